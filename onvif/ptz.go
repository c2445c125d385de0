package onvif

import (
	"context"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// Generic PTZ space URIs.
const (
	SpacePanTiltGeneric = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
	SpaceZoomGeneric    = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
)

// Vector2D is tt:Vector2D (pan/tilt).
type Vector2D struct {
	X     Float  `xml:"x,attr" json:"x"`
	Y     Float  `xml:"y,attr" json:"y"`
	Space string `xml:"space,attr,omitempty" json:"space,omitempty"`
}

// Vector1D is tt:Vector1D (zoom).
type Vector1D struct {
	X     Float  `xml:"x,attr" json:"x"`
	Space string `xml:"space,attr,omitempty" json:"space,omitempty"`
}

// PTZVector is a position; either part may be absent.
type PTZVector struct {
	PanTilt *Vector2D `xml:"PanTilt" json:"pan_tilt,omitempty"`
	Zoom    *Vector1D `xml:"Zoom" json:"zoom,omitempty"`
}

type ptzVectorOut struct {
	PanTilt *Vector2D `xml:"tt:PanTilt,omitempty"`
	Zoom    *Vector1D `xml:"tt:Zoom,omitempty"`
}

func (v PTZVector) out() ptzVectorOut { return ptzVectorOut(v) }

// String formats the position for people.
func (v PTZVector) String() string {
	var parts []string
	if v.PanTilt != nil {
		parts = append(parts, fmt.Sprintf("pan=%.4g tilt=%.4g", float64(v.PanTilt.X), float64(v.PanTilt.Y)))
	}
	if v.Zoom != nil {
		parts = append(parts, fmt.Sprintf("zoom=%.4g", float64(v.Zoom.X)))
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, " ")
}

// FloatRange is tt:FloatRange.
type FloatRange struct {
	Min Float `xml:"Min" json:"min"`
	Max Float `xml:"Max" json:"max"`
}

type floatRangeOut struct {
	Min Float `xml:"tt:Min"`
	Max Float `xml:"tt:Max"`
}

// Space2D is tt:Space2DDescription; YRange is absent for 1-D spaces.
type Space2D struct {
	URI    string      `xml:"URI" json:"uri"`
	XRange FloatRange  `xml:"XRange" json:"x_range"`
	YRange *FloatRange `xml:"YRange" json:"y_range,omitempty"`
}

// PTZSpaces is tt:PTZSpaces (the parts we use).
type PTZSpaces struct {
	AbsolutePanTilt   []Space2D `xml:"AbsolutePanTiltPositionSpace" json:"absolute_pan_tilt,omitempty"`
	AbsoluteZoom      []Space2D `xml:"AbsoluteZoomPositionSpace" json:"absolute_zoom,omitempty"`
	RelativePanTilt   []Space2D `xml:"RelativePanTiltTranslationSpace" json:"relative_pan_tilt,omitempty"`
	RelativeZoom      []Space2D `xml:"RelativeZoomTranslationSpace" json:"relative_zoom,omitempty"`
	ContinuousPanTilt []Space2D `xml:"ContinuousPanTiltVelocitySpace" json:"continuous_pan_tilt,omitempty"`
	ContinuousZoom    []Space2D `xml:"ContinuousZoomVelocitySpace" json:"continuous_zoom,omitempty"`
	PanTiltSpeed      []Space2D `xml:"PanTiltSpeedSpace" json:"pan_tilt_speed,omitempty"`
	ZoomSpeed         []Space2D `xml:"ZoomSpeedSpace" json:"zoom_speed,omitempty"`
}

// PTZNode is tt:PTZNode.
type PTZNode struct {
	Token         string    `xml:"token,attr" json:"token"`
	Name          string    `xml:"Name" json:"name"`
	Spaces        PTZSpaces `xml:"SupportedPTZSpaces" json:"spaces"`
	MaxPresets    int       `xml:"MaximumNumberOfPresets" json:"max_presets"`
	HomeSupported bool      `xml:"HomeSupported" json:"home_supported"`
}

// Limits is a pan/tilt or zoom limit range in a given space.
type Limits struct {
	URI    string      `xml:"URI" json:"uri"`
	XRange FloatRange  `xml:"XRange" json:"x_range"`
	YRange *FloatRange `xml:"YRange" json:"y_range,omitempty"`
}

type limitsWrap struct {
	Range Limits `xml:"Range"`
}

// PTZConfiguration is tt:PTZConfiguration. Fields we do not model (the
// Extension) are preserved so a read-modify-write does not drop them.
type PTZConfiguration struct {
	Token          string      `xml:"token,attr" json:"token"`
	MoveRamp       *int        `xml:"MoveRamp,attr" json:"-"`
	PresetRamp     *int        `xml:"PresetRamp,attr" json:"-"`
	PresetTourRamp *int        `xml:"PresetTourRamp,attr" json:"-"`
	Name           string      `xml:"Name" json:"name"`
	UseCount       int         `xml:"UseCount" json:"use_count"`
	NodeToken      string      `xml:"NodeToken" json:"node_token"`
	DefAbsPanTilt  string      `xml:"DefaultAbsolutePantTiltPositionSpace" json:"default_abs_pan_tilt_space,omitempty"`
	DefAbsZoom     string      `xml:"DefaultAbsoluteZoomPositionSpace" json:"default_abs_zoom_space,omitempty"`
	DefRelPanTilt  string      `xml:"DefaultRelativePanTiltTranslationSpace" json:"-"`
	DefRelZoom     string      `xml:"DefaultRelativeZoomTranslationSpace" json:"-"`
	DefContPanTilt string      `xml:"DefaultContinuousPanTiltVelocitySpace" json:"-"`
	DefContZoom    string      `xml:"DefaultContinuousZoomVelocitySpace" json:"-"`
	DefaultSpeed   *PTZVector  `xml:"DefaultPTZSpeed" json:"default_speed,omitempty"`
	DefaultTimeout string      `xml:"DefaultPTZTimeout" json:"default_timeout,omitempty"`
	PanTiltLimits  *limitsWrap `xml:"PanTiltLimits" json:"-"`
	ZoomLimits     *limitsWrap `xml:"ZoomLimits" json:"-"`
	Extension      *rawNode    `xml:"Extension" json:"-"`
}

// PanTiltLimit returns the pan/tilt limits, nil when the camera exposes none.
func (p *PTZConfiguration) PanTiltLimit() *Limits {
	if p.PanTiltLimits == nil {
		return nil
	}
	l := p.PanTiltLimits.Range
	return &l
}

// ZoomLimit returns the zoom limits, nil when the camera exposes none.
func (p *PTZConfiguration) ZoomLimit() *Limits {
	if p.ZoomLimits == nil {
		return nil
	}
	l := p.ZoomLimits.Range
	return &l
}

// MarshalXML writes the configuration with tt:-qualified children.
func (p PTZConfiguration) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "token"}, Value: p.Token})
	for _, a := range []struct {
		n string
		v *int
	}{{"MoveRamp", p.MoveRamp}, {"PresetRamp", p.PresetRamp}, {"PresetTourRamp", p.PresetTourRamp}} {
		if a.v != nil {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a.n}, Value: fmt.Sprint(*a.v)})
		}
	}
	type rangeOut struct {
		URI    string         `xml:"tt:URI"`
		XRange floatRangeOut  `xml:"tt:XRange"`
		YRange *floatRangeOut `xml:"tt:YRange,omitempty"`
	}
	type wrapOut struct {
		Range rangeOut `xml:"tt:Range"`
	}
	conv := func(w *limitsWrap) *wrapOut {
		if w == nil {
			return nil
		}
		o := &wrapOut{Range: rangeOut{URI: w.Range.URI, XRange: floatRangeOut(w.Range.XRange)}}
		if w.Range.YRange != nil {
			y := floatRangeOut(*w.Range.YRange)
			o.Range.YRange = &y
		}
		return o
	}
	var speed *ptzVectorOut
	if p.DefaultSpeed != nil {
		s := p.DefaultSpeed.out()
		speed = &s
	}
	body := struct {
		Name           string        `xml:"tt:Name"`
		UseCount       int           `xml:"tt:UseCount"`
		NodeToken      string        `xml:"tt:NodeToken"`
		DefAbsPanTilt  string        `xml:"tt:DefaultAbsolutePantTiltPositionSpace,omitempty"`
		DefAbsZoom     string        `xml:"tt:DefaultAbsoluteZoomPositionSpace,omitempty"`
		DefRelPanTilt  string        `xml:"tt:DefaultRelativePanTiltTranslationSpace,omitempty"`
		DefRelZoom     string        `xml:"tt:DefaultRelativeZoomTranslationSpace,omitempty"`
		DefContPanTilt string        `xml:"tt:DefaultContinuousPanTiltVelocitySpace,omitempty"`
		DefContZoom    string        `xml:"tt:DefaultContinuousZoomVelocitySpace,omitempty"`
		DefaultSpeed   *ptzVectorOut `xml:"tt:DefaultPTZSpeed,omitempty"`
		DefaultTimeout string        `xml:"tt:DefaultPTZTimeout,omitempty"`
		PanTiltLimits  *wrapOut      `xml:"tt:PanTiltLimits,omitempty"`
		ZoomLimits     *wrapOut      `xml:"tt:ZoomLimits,omitempty"`
		Extension      *rawNode      `xml:"tt:Extension,omitempty"`
	}{p.Name, p.UseCount, p.NodeToken, p.DefAbsPanTilt, p.DefAbsZoom, p.DefRelPanTilt, p.DefRelZoom,
		p.DefContPanTilt, p.DefContZoom, speed, p.DefaultTimeout, conv(p.PanTiltLimits), conv(p.ZoomLimits), p.Extension}
	return e.EncodeElement(body, start)
}

// Preset is a PTZ preset. Presets are keyed by Token; names may be empty or
// duplicated.
type Preset struct {
	Token    string     `xml:"token,attr" json:"token"`
	Name     string     `xml:"Name" json:"name"`
	Position *PTZVector `xml:"PTZPosition" json:"position,omitempty"`
}

// MoveStatus is tt:PTZMoveStatus; values are IDLE, MOVING or UNKNOWN.
type MoveStatus struct {
	PanTilt string `xml:"PanTilt" json:"pan_tilt,omitempty"`
	Zoom    string `xml:"Zoom" json:"zoom,omitempty"`
}

// PTZStatus is tt:PTZStatus.
type PTZStatus struct {
	Position   *PTZVector `xml:"Position" json:"position,omitempty"`
	MoveStatus MoveStatus `xml:"MoveStatus" json:"move_status"`
	Error      string     `xml:"Error" json:"error,omitempty"`
	UtcTime    string     `xml:"UtcTime" json:"utc_time,omitempty"`
}

// GetNodes returns the PTZ nodes.
func (c *Client) GetNodes(ctx context.Context) ([]PTZNode, error) {
	var r struct {
		Node []PTZNode `xml:"PTZNode"`
	}
	err := c.call(ctx, NSPTZ, NSPTZ+"/GetNodes", struct {
		XMLName struct{} `xml:"tptz:GetNodes"`
	}{}, "GetNodesResponse", &r)
	if err != nil {
		return nil, c.wrap("GetNodes", err)
	}
	return r.Node, nil
}

// GetConfigurations returns all PTZ configurations.
func (c *Client) GetConfigurations(ctx context.Context) ([]PTZConfiguration, error) {
	var r struct {
		Cfg []PTZConfiguration `xml:"PTZConfiguration"`
	}
	err := c.call(ctx, NSPTZ, NSPTZ+"/GetConfigurations", struct {
		XMLName struct{} `xml:"tptz:GetConfigurations"`
	}{}, "GetConfigurationsResponse", &r)
	if err != nil {
		return nil, c.wrap("GetConfigurations", err)
	}
	return r.Cfg, nil
}

// GetConfiguration returns one PTZ configuration.
func (c *Client) GetConfiguration(ctx context.Context, token string) (PTZConfiguration, error) {
	var r struct {
		Cfg *PTZConfiguration `xml:"PTZConfiguration"`
	}
	err := c.call(ctx, NSPTZ, NSPTZ+"/GetConfiguration", struct {
		XMLName struct{} `xml:"tptz:GetConfiguration"`
		Token   string   `xml:"tptz:PTZConfigurationToken"`
	}{Token: token}, "GetConfigurationResponse", &r)
	if err == nil && r.Cfg == nil {
		err = fmt.Errorf("%w: no PTZConfiguration", ErrMalformed)
	}
	if err != nil {
		return PTZConfiguration{}, c.wrap("GetConfiguration "+token, err)
	}
	return *r.Cfg, nil
}

// PTZConfigurationOptions is the part of tt:PTZConfigurationOptions we use.
type PTZConfigurationOptions struct {
	Spaces     PTZSpaces `xml:"Spaces" json:"spaces"`
	PTZTimeout *struct {
		Min string `xml:"Min" json:"min"`
		Max string `xml:"Max" json:"max"`
	} `xml:"PTZTimeout" json:"timeout,omitempty"`
}

// GetConfigurationOptions returns the spaces and ranges allowed for a
// configuration.
func (c *Client) GetConfigurationOptions(ctx context.Context, configToken string) (PTZConfigurationOptions, error) {
	var r struct {
		Opt *PTZConfigurationOptions `xml:"PTZConfigurationOptions"`
	}
	err := c.call(ctx, NSPTZ, NSPTZ+"/GetConfigurationOptions", struct {
		XMLName struct{} `xml:"tptz:GetConfigurationOptions"`
		Token   string   `xml:"tptz:ConfigurationToken"`
	}{Token: configToken}, "GetConfigurationOptionsResponse", &r)
	if err == nil && r.Opt == nil {
		err = fmt.Errorf("%w: no PTZConfigurationOptions", ErrMalformed)
	}
	if err != nil {
		return PTZConfigurationOptions{}, c.wrap("GetConfigurationOptions "+configToken, err)
	}
	return *r.Opt, nil
}

// SetConfiguration writes a PTZ configuration (persisted).
func (c *Client) SetConfiguration(ctx context.Context, cfg PTZConfiguration) error {
	err := c.call(ctx, NSPTZ, NSPTZ+"/SetConfiguration", struct {
		XMLName          struct{}         `xml:"tptz:SetConfiguration"`
		Cfg              PTZConfiguration `xml:"tptz:PTZConfiguration"`
		ForcePersistence bool             `xml:"tptz:ForcePersistence"`
	}{Cfg: cfg, ForcePersistence: true}, "SetConfigurationResponse", nil)
	if err != nil {
		return c.wrap("SetConfiguration "+cfg.Token, err)
	}
	return nil
}

// SetLimits sets pan/tilt and/or zoom limits on a configuration with a
// read-modify-write, then reads the configuration back and checks the camera
// kept them. A nil argument leaves that limit unchanged. A camera whose
// configuration carries no PanTiltLimits (ZoomLimits) element does not support
// that limit: ErrNotSupported. Returns the configuration read back.
func (c *Client) SetLimits(ctx context.Context, configToken string, panTilt, zoom *Limits) (PTZConfiguration, error) {
	cur, err := c.GetConfiguration(ctx, configToken)
	if err != nil {
		return cur, err
	}
	if panTilt != nil {
		if cur.PanTiltLimits == nil {
			return cur, c.wrap("SetLimits "+configToken, fmt.Errorf("pan/tilt limits: %w", ErrNotSupported))
		}
		l := *panTilt
		if l.URI == "" {
			l.URI = cur.PanTiltLimits.Range.URI
		}
		cur.PanTiltLimits.Range = l
	}
	if zoom != nil {
		if cur.ZoomLimits == nil {
			return cur, c.wrap("SetLimits "+configToken, fmt.Errorf("zoom limits: %w", ErrNotSupported))
		}
		l := *zoom
		if l.URI == "" {
			l.URI = cur.ZoomLimits.Range.URI
		}
		l.YRange = nil
		cur.ZoomLimits.Range = l
	}
	if err := c.SetConfiguration(ctx, cur); err != nil {
		return cur, err
	}
	back, err := c.GetConfiguration(ctx, configToken)
	if err != nil {
		return back, err
	}
	if panTilt != nil && !limitsEqual(back.PanTiltLimit(), panTilt) {
		return back, c.wrap("SetLimits "+configToken, fmt.Errorf("%w: camera did not keep pan/tilt limits", ErrDevice))
	}
	if zoom != nil && !limitsEqual(back.ZoomLimit(), zoom) {
		return back, c.wrap("SetLimits "+configToken, fmt.Errorf("%w: camera did not keep zoom limits", ErrDevice))
	}
	return back, nil
}

func limitsEqual(got, want *Limits) bool {
	if got == nil || want == nil {
		return got == want
	}
	eq := func(a, b Float) bool {
		x, y := float64(a), float64(b)
		if math.IsInf(x, 0) || math.IsInf(y, 0) {
			return x == y
		}
		return math.Abs(x-y) < 1e-4
	}
	if !eq(got.XRange.Min, want.XRange.Min) || !eq(got.XRange.Max, want.XRange.Max) {
		return false
	}
	if want.YRange != nil {
		if got.YRange == nil || !eq(got.YRange.Min, want.YRange.Min) || !eq(got.YRange.Max, want.YRange.Max) {
			return false
		}
	}
	return true
}

// GetPresets returns every preset of a profile, in the camera's order.
func (c *Client) GetPresets(ctx context.Context, profile string) ([]Preset, error) {
	var r struct {
		Preset []Preset `xml:"Preset"`
	}
	err := c.call(ctx, NSPTZ, NSPTZ+"/GetPresets", struct {
		XMLName      struct{} `xml:"tptz:GetPresets"`
		ProfileToken string   `xml:"tptz:ProfileToken"`
	}{ProfileToken: profile}, "GetPresetsResponse", &r)
	if err != nil {
		return nil, c.wrap("GetPresets "+profile, err)
	}
	for i := range r.Preset {
		r.Preset[i].Token = strings.TrimSpace(r.Preset[i].Token)
	}
	return r.Preset, nil
}

// GotoPreset moves to a preset. No Speed is sent: the camera uses its
// default (a zero speed with an empty space is refused by some cameras).
func (c *Client) GotoPreset(ctx context.Context, profile, preset string) error {
	err := c.call(ctx, NSPTZ, NSPTZ+"/GotoPreset", struct {
		XMLName      struct{} `xml:"tptz:GotoPreset"`
		ProfileToken string   `xml:"tptz:ProfileToken"`
		PresetToken  string   `xml:"tptz:PresetToken"`
	}{ProfileToken: profile, PresetToken: preset}, "GotoPresetResponse", nil)
	if err != nil {
		return c.wrap("GotoPreset "+preset, err)
	}
	return nil
}

// SetPreset stores the current position as a preset. token "" creates a new
// preset; the camera's token is returned. Cameras may refuse with
// ter:PresetExist (errors.Is(err, Subcode("PresetExist"))).
func (c *Client) SetPreset(ctx context.Context, profile, name, token string) (string, error) {
	var r struct {
		Token string `xml:"PresetToken"`
	}
	err := c.call(ctx, NSPTZ, NSPTZ+"/SetPreset", struct {
		XMLName      struct{} `xml:"tptz:SetPreset"`
		ProfileToken string   `xml:"tptz:ProfileToken"`
		PresetName   string   `xml:"tptz:PresetName,omitempty"`
		PresetToken  string   `xml:"tptz:PresetToken,omitempty"`
	}{ProfileToken: profile, PresetName: name, PresetToken: token}, "SetPresetResponse", &r)
	if err != nil {
		return "", c.wrap("SetPreset "+name, err)
	}
	return strings.TrimSpace(r.Token), nil
}

// RemovePreset deletes a preset.
func (c *Client) RemovePreset(ctx context.Context, profile, preset string) error {
	err := c.call(ctx, NSPTZ, NSPTZ+"/RemovePreset", struct {
		XMLName      struct{} `xml:"tptz:RemovePreset"`
		ProfileToken string   `xml:"tptz:ProfileToken"`
		PresetToken  string   `xml:"tptz:PresetToken"`
	}{ProfileToken: profile, PresetToken: preset}, "RemovePresetResponse", nil)
	if err != nil {
		return c.wrap("RemovePreset "+preset, err)
	}
	return nil
}

// AbsoluteMove moves to a position (no Speed: camera default).
func (c *Client) AbsoluteMove(ctx context.Context, profile string, pos PTZVector) error {
	err := c.call(ctx, NSPTZ, NSPTZ+"/AbsoluteMove", struct {
		XMLName      struct{}     `xml:"tptz:AbsoluteMove"`
		ProfileToken string       `xml:"tptz:ProfileToken"`
		Position     ptzVectorOut `xml:"tptz:Position"`
	}{ProfileToken: profile, Position: pos.out()}, "AbsoluteMoveResponse", nil)
	if err != nil {
		return c.wrap("AbsoluteMove", err)
	}
	return nil
}

// GetStatus returns position and move status. MoveStatus is unreliable on
// some firmware (Hikvision): compare positions instead.
func (c *Client) GetStatus(ctx context.Context, profile string) (PTZStatus, error) {
	var r struct {
		Status *PTZStatus `xml:"PTZStatus"`
	}
	err := c.call(ctx, NSPTZ, NSPTZ+"/GetStatus", struct {
		XMLName      struct{} `xml:"tptz:GetStatus"`
		ProfileToken string   `xml:"tptz:ProfileToken"`
	}{ProfileToken: profile}, "GetStatusResponse", &r)
	if err == nil && r.Status == nil {
		err = fmt.Errorf("%w: no PTZStatus", ErrMalformed)
	}
	if err != nil {
		return PTZStatus{}, c.wrap("GetStatus", err)
	}
	r.Status.MoveStatus.PanTilt = strings.TrimSpace(r.Status.MoveStatus.PanTilt)
	r.Status.MoveStatus.Zoom = strings.TrimSpace(r.Status.MoveStatus.Zoom)
	return *r.Status, nil
}
