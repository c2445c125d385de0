package onvif

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// Float is an xsd:float: it accepts and writes INF / -INF (Go would write
// "+Inf", which strict devices reject).
type Float float64

// MarshalText implements encoding.TextMarshaler.
func (f Float) MarshalText() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsInf(v, 1):
		return []byte("INF"), nil
	case math.IsInf(v, -1):
		return []byte("-INF"), nil
	case math.IsNaN(v):
		return []byte("NaN"), nil
	}
	return []byte(strconv.FormatFloat(v, 'g', -1, 64)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Float) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("bad float %q", s)
	}
	*f = Float(v)
	return nil
}

// IntRectangle is tt:IntRectangle.
type IntRectangle struct {
	X      int `xml:"x,attr" json:"x"`
	Y      int `xml:"y,attr" json:"y"`
	Width  int `xml:"width,attr" json:"width"`
	Height int `xml:"height,attr" json:"height"`
}

// Resolution is tt:VideoResolution.
type Resolution struct {
	Width  int `xml:"Width" json:"width"`
	Height int `xml:"Height" json:"height"`
}

// VideoSourceConfig is the part of tt:VideoSourceConfiguration we use.
type VideoSourceConfig struct {
	Token       string       `xml:"token,attr" json:"token"`
	Name        string       `xml:"Name" json:"name"`
	SourceToken string       `xml:"SourceToken" json:"source_token"`
	Bounds      IntRectangle `xml:"Bounds" json:"bounds"`
}

// VideoEncoderConfig is the part of tt:VideoEncoderConfiguration we use.
type VideoEncoderConfig struct {
	Token       string     `xml:"token,attr" json:"token"`
	Name        string     `xml:"Name" json:"name"`
	Encoding    string     `xml:"Encoding" json:"encoding"`
	Resolution  Resolution `xml:"Resolution" json:"resolution"`
	Quality     Float      `xml:"Quality" json:"quality"`
	RateControl *struct {
		FrameRateLimit   int `xml:"FrameRateLimit" json:"fps"`
		EncodingInterval int `xml:"EncodingInterval" json:"interval"`
		BitrateLimit     int `xml:"BitrateLimit" json:"bitrate_kbps"`
	} `xml:"RateControl" json:"rate_control,omitempty"`
	H264 *struct {
		GovLength   int    `xml:"GovLength" json:"gov_length"`
		H264Profile string `xml:"H264Profile" json:"profile"`
	} `xml:"H264" json:"h264,omitempty"`
}

// Profile is a Media (ver10) profile.
type Profile struct {
	Token   string              `xml:"token,attr" json:"token"`
	Fixed   bool                `xml:"fixed,attr" json:"fixed"`
	Name    string              `xml:"Name" json:"name"`
	Source  *VideoSourceConfig  `xml:"VideoSourceConfiguration" json:"video_source,omitempty"`
	Encoder *VideoEncoderConfig `xml:"VideoEncoderConfiguration" json:"video_encoder,omitempty"`
	PTZ     *PTZConfiguration   `xml:"PTZConfiguration" json:"ptz,omitempty"`
}

// GetProfiles returns all Media profiles.
func (c *Client) GetProfiles(ctx context.Context) ([]Profile, error) {
	var r struct {
		Profiles []Profile `xml:"Profiles"`
	}
	err := c.call(ctx, NSMedia, NSMedia+"/GetProfiles",
		struct {
			XMLName struct{} `xml:"trt:GetProfiles"`
		}{}, "GetProfilesResponse", &r)
	if err != nil {
		return nil, c.wrap("GetProfiles", err)
	}
	return r.Profiles, nil
}

type mediaURIResp struct {
	MediaURI struct {
		URI string `xml:"Uri"`
	} `xml:"MediaUri"`
}

// GetStreamURI returns the RTSP (RTP-Unicast over RTSP) URI of a profile.
// The camera's URI is returned as given, except that credentials embedded
// by the camera are removed; use RedactURL before printing any URI.
func (c *Client) GetStreamURI(ctx context.Context, profile string) (string, error) {
	type transport struct {
		Protocol string `xml:"tt:Protocol"`
	}
	type setup struct {
		Stream    string    `xml:"tt:Stream"`
		Transport transport `xml:"tt:Transport"`
	}
	var r mediaURIResp
	err := c.call(ctx, NSMedia, NSMedia+"/GetStreamUri",
		struct {
			XMLName      struct{} `xml:"trt:GetStreamUri"`
			StreamSetup  setup    `xml:"trt:StreamSetup"`
			ProfileToken string   `xml:"trt:ProfileToken"`
		}{StreamSetup: setup{Stream: "RTP-Unicast", Transport: transport{Protocol: "RTSP"}}, ProfileToken: profile},
		"GetStreamUriResponse", &r)
	if err != nil {
		return "", c.wrap("GetStreamUri "+profile, err)
	}
	return c.cleanMediaURI(r.MediaURI.URI)
}

// GetSnapshotURI returns the JPEG snapshot URI of a profile.
func (c *Client) GetSnapshotURI(ctx context.Context, profile string) (string, error) {
	var r mediaURIResp
	err := c.call(ctx, NSMedia, NSMedia+"/GetSnapshotUri",
		struct {
			XMLName      struct{} `xml:"trt:GetSnapshotUri"`
			ProfileToken string   `xml:"trt:ProfileToken"`
		}{ProfileToken: profile}, "GetSnapshotUriResponse", &r)
	if err != nil {
		return "", c.wrap("GetSnapshotUri "+profile, err)
	}
	return c.cleanMediaURI(r.MediaURI.URI)
}

func (c *Client) cleanMediaURI(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("onvif: camera %s returned a bad media URI: %w", c.base.Host, ErrMalformed)
	}
	u.User = nil
	return u.String(), nil
}

// --- Media2 privacy masks -------------------------------------------------

// Point is a Media2 polygon vertex in ONVIF's normalized, centred, y-up
// coordinates (−1..1).
type Point struct {
	X Float `xml:"x,attr" json:"x"`
	Y Float `xml:"y,attr" json:"y"`
}

// ImagePoint is a point in Velo's image coordinates: normalized [0,1],
// origin at the top-left, x right, y down.
type ImagePoint struct {
	X, Y float64
}

// ToONVIF converts an image point to ONVIF's centred y-up coordinates.
func (p ImagePoint) ToONVIF() Point {
	return Point{X: Float(2*p.X - 1), Y: Float(1 - 2*p.Y)}
}

// ToImage converts an ONVIF point to Velo's image coordinates.
func (p Point) ToImage() ImagePoint {
	return ImagePoint{X: (float64(p.X) + 1) / 2, Y: (1 - float64(p.Y)) / 2}
}

// Color is tt:Color.
type Color struct {
	X          Float  `xml:"X,attr" json:"x"`
	Y          Float  `xml:"Y,attr" json:"y"`
	Z          Float  `xml:"Z,attr" json:"z"`
	Colorspace string `xml:"Colorspace,attr,omitempty" json:"colorspace,omitempty"`
}

// Mask is a Media2 tr2:Mask.
type Mask struct {
	Token              string  `json:"token"`
	ConfigurationToken string  `json:"configuration_token"`
	Polygon            []Point `json:"polygon"`
	Type               string  `json:"type"` // Color | Pixelated | Blurred
	Color              *Color  `json:"color,omitempty"`
	Enabled            bool    `json:"enabled"`
}

// maskXML is the wire form (decode: local names).
type maskXML struct {
	Token              string `xml:"token,attr"`
	ConfigurationToken string `xml:"ConfigurationToken"`
	Polygon            struct {
		Point []Point `xml:"Point"`
	} `xml:"Polygon"`
	Type    string `xml:"Type"`
	Color   *Color `xml:"Color"`
	Enabled bool   `xml:"Enabled"`
}

// maskOut is the qualified wire form for requests (tr2:Mask children are in
// the Media2 namespace; tt:Polygon's points in the schema namespace).
type maskOut struct {
	Token              string     `xml:"token,attr,omitempty"`
	ConfigurationToken string     `xml:"tr2:ConfigurationToken"`
	Polygon            polygonOut `xml:"tr2:Polygon"`
	Type               string     `xml:"tr2:Type"`
	Color              *colorOut  `xml:"tr2:Color,omitempty"`
	Enabled            bool       `xml:"tr2:Enabled"`
}

type polygonOut struct {
	Point []pointOut `xml:"tt:Point"`
}

type pointOut struct {
	X Float `xml:"x,attr"`
	Y Float `xml:"y,attr"`
}

type colorOut struct {
	X          Float  `xml:"X,attr"`
	Y          Float  `xml:"Y,attr"`
	Z          Float  `xml:"Z,attr"`
	Colorspace string `xml:"Colorspace,attr,omitempty"`
}

func (m Mask) out(withToken bool) maskOut {
	o := maskOut{ConfigurationToken: m.ConfigurationToken, Type: m.Type, Enabled: m.Enabled}
	if withToken {
		o.Token = m.Token
	}
	for _, p := range m.Polygon {
		o.Polygon.Point = append(o.Polygon.Point, pointOut(p))
	}
	if m.Color != nil {
		o.Color = &colorOut{X: m.Color.X, Y: m.Color.Y, Z: m.Color.Z, Colorspace: m.Color.Colorspace}
	}
	return o
}

// MaskOptions is tr2:GetMaskOptions' reply.
type MaskOptions struct {
	RectangleOnly   bool     `json:"rectangle_only"`
	SingleColorOnly bool     `json:"single_color_only"`
	MaxMasks        int      `json:"max_masks"`
	MaxPoints       int      `json:"max_points"`
	Types           []string `json:"types"`
	Colors          []Color  `json:"colors,omitempty"`
}

// GetMaskOptions returns the camera's mask abilities for a video source
// configuration.
func (c *Client) GetMaskOptions(ctx context.Context, configToken string) (MaskOptions, error) {
	var r struct {
		Options struct {
			RectangleOnly   bool     `xml:"RectangleOnly,attr"`
			SingleColorOnly bool     `xml:"SingleColorOnly,attr"`
			MaxMasks        int      `xml:"MaxMasks"`
			MaxPoints       int      `xml:"MaxPoints"`
			Types           []string `xml:"Types"`
			Color           struct {
				ColorList []Color `xml:"ColorList"`
			} `xml:"Color"`
		} `xml:"Options"`
	}
	err := c.call(ctx, NSMedia2, NSMedia2+"/GetMaskOptions",
		struct {
			XMLName            struct{} `xml:"tr2:GetMaskOptions"`
			ConfigurationToken string   `xml:"tr2:ConfigurationToken"`
		}{ConfigurationToken: configToken}, "GetMaskOptionsResponse", &r)
	if err != nil {
		return MaskOptions{}, c.wrap("GetMaskOptions "+configToken, err)
	}
	o := r.Options
	mo := MaskOptions{RectangleOnly: o.RectangleOnly, SingleColorOnly: o.SingleColorOnly, MaxMasks: o.MaxMasks, MaxPoints: o.MaxPoints, Colors: o.Color.ColorList}
	for _, t := range o.Types {
		// Types may be a list in one element or repeated elements.
		mo.Types = append(mo.Types, strings.Fields(t)...)
	}
	return mo, nil
}

// GetMasks returns the masks of a video source configuration ("" = all).
func (c *Client) GetMasks(ctx context.Context, configToken string) ([]Mask, error) {
	var r struct {
		Masks []maskXML `xml:"Masks"`
	}
	err := c.call(ctx, NSMedia2, NSMedia2+"/GetMasks",
		struct {
			XMLName            struct{} `xml:"tr2:GetMasks"`
			ConfigurationToken string   `xml:"tr2:ConfigurationToken,omitempty"`
		}{ConfigurationToken: configToken}, "GetMasksResponse", &r)
	if err != nil {
		return nil, c.wrap("GetMasks", err)
	}
	out := make([]Mask, 0, len(r.Masks))
	for _, m := range r.Masks {
		out = append(out, Mask{Token: m.Token, ConfigurationToken: m.ConfigurationToken, Polygon: m.Polygon.Point,
			Type: strings.TrimSpace(m.Type), Color: m.Color, Enabled: m.Enabled})
	}
	return out, nil
}

// CreateMask creates a mask and returns its token. The device may adjust the
// polygon (RectangleOnly): read it back with GetMasks.
func (c *Client) CreateMask(ctx context.Context, m Mask) (string, error) {
	if len(m.Polygon) < 3 {
		return "", fmt.Errorf("onvif: CreateMask on %s: polygon has %d points, need ≥ 3: %w", c.base.Host, len(m.Polygon), ErrInvalidArgument)
	}
	var r struct {
		Token string `xml:"Token"`
	}
	err := c.call(ctx, NSMedia2, NSMedia2+"/CreateMask",
		struct {
			XMLName struct{} `xml:"tr2:CreateMask"`
			Mask    maskOut  `xml:"tr2:Mask"`
		}{Mask: m.out(false)}, "CreateMaskResponse", &r)
	if err != nil {
		return "", c.wrap("CreateMask", err)
	}
	if strings.TrimSpace(r.Token) == "" {
		return "", c.wrap("CreateMask", fmt.Errorf("%w: empty token", ErrMalformed))
	}
	return strings.TrimSpace(r.Token), nil
}

// SetMask replaces an existing mask (m.Token required).
func (c *Client) SetMask(ctx context.Context, m Mask) error {
	if m.Token == "" {
		return fmt.Errorf("onvif: SetMask on %s: empty token: %w", c.base.Host, ErrInvalidArgument)
	}
	err := c.call(ctx, NSMedia2, NSMedia2+"/SetMask",
		struct {
			XMLName struct{} `xml:"tr2:SetMask"`
			Mask    maskOut  `xml:"tr2:Mask"`
		}{Mask: m.out(true)}, "SetMaskResponse", nil)
	if err != nil {
		return c.wrap("SetMask "+m.Token, err)
	}
	return nil
}

// DeleteMask removes a mask.
func (c *Client) DeleteMask(ctx context.Context, token string) error {
	err := c.call(ctx, NSMedia2, NSMedia2+"/DeleteMask",
		struct {
			XMLName struct{} `xml:"tr2:DeleteMask"`
			Token   string   `xml:"tr2:Token"`
		}{Token: token}, "DeleteMaskResponse", nil)
	if err != nil {
		return c.wrap("DeleteMask "+token, err)
	}
	return nil
}

// VideoEncoder2Config is the part of a Media2 tt:VideoEncoder2Configuration
// we use: Media2 names H.265 (Media's ver10 encoding enum has no H265, so
// an H.265 camera's Media profile may say H264 or nothing).
type VideoEncoder2Config struct {
	Token       string     `xml:"token,attr" json:"token"`
	GovLength   int        `xml:"GovLength,attr" json:"gov_length,omitempty"`
	Encoding    string     `xml:"Encoding" json:"encoding"`
	Resolution  Resolution `xml:"Resolution" json:"resolution"`
	RateControl *struct {
		FrameRateLimit float64 `xml:"FrameRateLimit" json:"fps"`
		BitrateLimit   int     `xml:"BitrateLimit" json:"bitrate_kbps"`
	} `xml:"RateControl" json:"rate_control,omitempty"`
}

// GetVideoEncoderConfigurations2 returns the Media2 video encoder
// configurations of a profile.
func (c *Client) GetVideoEncoderConfigurations2(ctx context.Context, profile string) ([]VideoEncoder2Config, error) {
	var r struct {
		Configurations []VideoEncoder2Config `xml:"Configurations"`
	}
	err := c.call(ctx, NSMedia2, NSMedia2+"/GetVideoEncoderConfigurations",
		struct {
			XMLName      struct{} `xml:"tr2:GetVideoEncoderConfigurations"`
			ProfileToken string   `xml:"tr2:ProfileToken"`
		}{ProfileToken: profile}, "GetVideoEncoderConfigurationsResponse", &r)
	if err != nil {
		return nil, c.wrap("GetVideoEncoderConfigurations "+profile, err)
	}
	return r.Configurations, nil
}
