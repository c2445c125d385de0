package camsim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	profMain  = "main"
	profSub   = "sub"
	vscToken  = "vsc0"
	vsToken   = "vs0"
	ptzCfgTok = "ptzcfg0"
	ptzNode   = "ptznode0"
)

// xaddrHost is what the camera reports as its own host:port.
func (c *Camera) xaddrHost() string {
	if h := c.cfg.Quirk.WrongXAddrHost; h != "" {
		return h
	}
	return fmt.Sprintf("%s:%d", c.cfg.Address, c.cfg.HTTPPort)
}

// XAddr is the device service URL (the real one).
func (c *Camera) XAddr() string {
	return fmt.Sprintf("http://%s:%d/onvif/device_service", c.cfg.Address, c.cfg.HTTPPort)
}

func (c *Camera) svc(path string) string { return "http://" + c.xaddrHost() + "/onvif/" + path }

func (c *Camera) dispatch(ns, action string, a *reqArgs, r *http.Request) (string, *soapError) {
	switch ns {
	case nsDevice:
		return c.device(action, a)
	case nsMedia:
		return c.media(action, a)
	case nsMedia2:
		if c.cfg.Masks.Disabled {
			break
		}
		return c.media2(action, a)
	case nsPTZ:
		if c.cfg.PTZ == nil {
			break
		}
		return c.ptz(action, a)
	case nsEvents, nsWSNT:
		if !c.cfg.Events {
			break
		}
		return c.events(action, a, r)
	}
	return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented: "+action)
}

func (c *Camera) device(action string, a *reqArgs) (string, *soapError) {
	cfg := c.cfg
	switch action {
	case "GetSystemDateAndTime":
		now := c.Clock()
		dt := func(t time.Time) string {
			return fmt.Sprintf(`<tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time>`+
				`<tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date>`,
				t.Hour(), t.Minute(), t.Second(), t.Year(), int(t.Month()), t.Day())
		}
		return `<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType>` +
			`<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>` +
			`<tt:UTCDateTime>` + dt(now) + `</tt:UTCDateTime><tt:LocalDateTime>` + dt(now) + `</tt:LocalDateTime>` +
			`</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`, nil
	case "GetDeviceInformation":
		return `<tds:GetDeviceInformationResponse><tds:Manufacturer>` + esc(cfg.Manufacturer) + `</tds:Manufacturer>` +
			`<tds:Model>` + esc(cfg.Model) + `</tds:Model><tds:FirmwareVersion>` + esc(cfg.Firmware) + `</tds:FirmwareVersion>` +
			`<tds:SerialNumber>` + esc(cfg.Serial) + `</tds:SerialNumber><tds:HardwareId>` + esc(cfg.HardwareID) + `</tds:HardwareId>` +
			`</tds:GetDeviceInformationResponse>`, nil
	case "GetHostname":
		return `<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP><tt:Name>` +
			esc(cfg.Hostname) + `</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>`, nil
	case "GetScopes":
		var b strings.Builder
		b.WriteString(`<tds:GetScopesResponse>`)
		for _, s := range c.scopes() {
			b.WriteString(`<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>` + esc(s) + `</tt:ScopeItem></tds:Scopes>`)
		}
		b.WriteString(`</tds:GetScopesResponse>`)
		return b.String(), nil
	case "GetServices":
		if cfg.Quirk.NoGetServices {
			return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented")
		}
		var b strings.Builder
		b.WriteString(`<tds:GetServicesResponse>`)
		svc := func(ns, path string, major, minor int) {
			fmt.Fprintf(&b, `<tds:Service><tds:Namespace>%s</tds:Namespace><tds:XAddr>%s</tds:XAddr>`+
				`<tds:Version><tt:Major>%d</tt:Major><tt:Minor>%d</tt:Minor></tds:Version></tds:Service>`, ns, c.svc(path), major, minor)
		}
		svc(nsDevice, "device_service", 2, 60)
		svc(nsMedia, "media_service", 2, 60)
		if !cfg.Masks.Disabled {
			svc(nsMedia2, "media2_service", 2, 60)
		}
		if cfg.PTZ != nil {
			svc(nsPTZ, "ptz_service", 2, 60)
		}
		b.WriteString(c.eventsServiceXML())
		b.WriteString(`</tds:GetServicesResponse>`)
		return b.String(), nil
	case "GetCapabilities":
		var b strings.Builder
		b.WriteString(`<tds:GetCapabilitiesResponse><tds:Capabilities>`)
		b.WriteString(`<tt:Device><tt:XAddr>` + c.svc("device_service") + `</tt:XAddr></tt:Device>`)
		b.WriteString(`<tt:Media><tt:XAddr>` + c.svc("media_service") + `</tt:XAddr><tt:StreamingCapabilities>` +
			`<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>` +
			`</tt:StreamingCapabilities></tt:Media>`)
		if cfg.PTZ != nil {
			b.WriteString(`<tt:PTZ><tt:XAddr>` + c.svc("ptz_service") + `</tt:XAddr></tt:PTZ>`)
		}
		b.WriteString(c.eventsCapabilityXML())
		b.WriteString(`</tds:Capabilities></tds:GetCapabilitiesResponse>`)
		return b.String(), nil
	case "GetServiceCapabilities":
		return `<tds:GetServiceCapabilitiesResponse><tds:Capabilities><tds:Network/><tds:Security UsernameToken="true" HttpDigest="true"/><tds:System/></tds:Capabilities></tds:GetServiceCapabilitiesResponse>`, nil
	case "GetNetworkInterfaces":
		return `<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>` +
			`<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>` + c.mac() + `</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>` +
			`<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual><tt:Address>` + cfg.Address +
			`</tt:Address><tt:PrefixLength>8</tt:PrefixLength></tt:Manual><tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4>` +
			`</tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>`, nil
	}
	return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented: "+action)
}

// mac derives a stable locally-administered MAC from the serial.
func (c *Camera) mac() string {
	u := stableUUID("mac:" + c.cfg.Serial)
	h := strings.ReplaceAll(u, "-", "")
	return "02:" + h[0:2] + ":" + h[2:4] + ":" + h[4:6] + ":" + h[6:8] + ":" + h[8:10]
}

func (c *Camera) scopes() []string {
	return []string{
		"onvif://www.onvif.org/type/video_encoder",
		"onvif://www.onvif.org/type/ptz",
		"onvif://www.onvif.org/Profile/Streaming",
		"onvif://www.onvif.org/Profile/T",
		"onvif://www.onvif.org/name/" + strings.ReplaceAll(c.cfg.Manufacturer+"_"+c.cfg.Model, " ", "%20"),
		"onvif://www.onvif.org/hardware/" + strings.ReplaceAll(c.cfg.Model, " ", "%20"),
		"onvif://www.onvif.org/location/camsim/" + c.cfg.ID,
	}
}

func (c *Camera) profileXML(elem, tok string) string {
	cfg := c.cfg
	w, h, br := cfg.Width, cfg.Height, 4096
	if tok == profSub {
		w, h, br = 640, 360, 512
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<%s token="%s" fixed="true"><tt:Name>%s</tt:Name>`, elem, tok, tok)
	fmt.Fprintf(&b, `<tt:VideoSourceConfiguration token="%s"><tt:Name>VideoSource</tt:Name><tt:UseCount>2</tt:UseCount>`+
		`<tt:SourceToken>%s</tt:SourceToken><tt:Bounds x="0" y="0" width="%d" height="%d"></tt:Bounds></tt:VideoSourceConfiguration>`,
		vscToken, vsToken, cfg.Width, cfg.Height)
	fmt.Fprintf(&b, `<tt:VideoEncoderConfiguration token="vec-%s"><tt:Name>%s</tt:Name><tt:UseCount>1</tt:UseCount>`+
		`<tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution>`+
		`<tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>%d</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>`+
		`<tt:BitrateLimit>%d</tt:BitrateLimit></tt:RateControl><tt:H264><tt:GovLength>%d</tt:GovLength><tt:H264Profile>High</tt:H264Profile></tt:H264>`+
		`<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port>`+
		`<tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>`,
		tok, tok, w, h, cfg.FPS, br, c.gop())
	if cfg.PTZ != nil {
		b.WriteString(c.ptzConfigXML("tt:PTZConfiguration"))
	}
	fmt.Fprintf(&b, `</%s>`, elem)
	return b.String()
}

func (c *Camera) media(action string, a *reqArgs) (string, *soapError) {
	cfg := c.cfg
	checkProfile := func() *soapError { return checkProfile(a.ProfileToken) }
	switch action {
	case "GetProfiles":
		return `<trt:GetProfilesResponse>` + c.profileXML("trt:Profiles", profMain) + c.profileXML("trt:Profiles", profSub) + `</trt:GetProfilesResponse>`, nil
	case "GetProfile":
		if f := checkProfile(); f != nil {
			return "", f
		}
		return `<trt:GetProfileResponse>` + c.profileXML("trt:Profile", a.ProfileToken) + `</trt:GetProfileResponse>`, nil
	case "GetVideoSources":
		return fmt.Sprintf(`<trt:GetVideoSourcesResponse><trt:VideoSources token="%s"><tt:Framerate>%d</tt:Framerate>`+
			`<tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>`,
			vsToken, cfg.FPS, cfg.Width, cfg.Height), nil
	case "GetStreamUri":
		if f := checkProfile(); f != nil {
			return "", f
		}
		if cfg.NoVideo {
			return "", fault("ter:ActionNotSupported", "no video on this camera")
		}
		host := fmt.Sprintf("%s:%d", cfg.Address, cfg.RTSPPort)
		if h := cfg.Quirk.WrongStreamHost; h != "" {
			host = h
		}
		uri := fmt.Sprintf("rtsp://%s/%s", host, a.ProfileToken)
		return `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>` + esc(uri) + `</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>` +
			`<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>`, nil
	case "GetSnapshotUri":
		if f := checkProfile(); f != nil {
			return "", f
		}
		uri := fmt.Sprintf("http://%s:%d/snapshot/%s.jpg", cfg.Address, cfg.HTTPPort, a.ProfileToken)
		return `<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>` + esc(uri) + `</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>` +
			`<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>`, nil
	case "GetServiceCapabilities":
		return `<trt:GetServiceCapabilitiesResponse><trt:Capabilities SnapshotUri="true"><trt:ProfileCapabilities MaximumNumberOfProfiles="2"/>` +
			`<trt:StreamingCapabilities RTP_TCP="true" RTP_RTSP_TCP="true"/></trt:Capabilities></trt:GetServiceCapabilitiesResponse>`, nil
	}
	return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented: "+action)
}

// media2 answers the Media2 service (privacy masks).
func (c *Camera) media2(action string, a *reqArgs) (string, *soapError) {
	mc := c.cfg.Masks
	switch action {
	case "GetServiceCapabilities":
		return `<tr2:GetServiceCapabilitiesResponse><tr2:Capabilities SnapshotUri="true" Mask="true" SourceMask="true">` +
			`<tr2:ProfileCapabilities MaximumNumberOfProfiles="2" ConfigurationsSupported="VideoSource VideoEncoder PTZ"/>` +
			`<tr2:StreamingCapabilities RTSPStreaming="true"/></tr2:Capabilities></tr2:GetServiceCapabilitiesResponse>`, nil
	case "GetMaskOptions":
		if a.ConfigurationToken != vscToken {
			return "", fault("ter:InvalidArgVal/ter:NoConfig", "no such configuration: "+a.ConfigurationToken)
		}
		return fmt.Sprintf(`<tr2:GetMaskOptionsResponse><tr2:Options RectangleOnly="%t" SingleColorOnly="false">`+
			`<tr2:MaxMasks>%d</tr2:MaxMasks><tr2:MaxPoints>%d</tr2:MaxPoints>`+
			`<tr2:Types>Color</tr2:Types><tr2:Types>Pixelated</tr2:Types><tr2:Types>Blurred</tr2:Types>`+
			`<tr2:Color><tt:ColorList X="16" Y="128" Z="128" Colorspace="http://www.onvif.org/ver10/colorspace/YCbCr"/>`+
			`<tt:ColorList X="235" Y="128" Z="128" Colorspace="http://www.onvif.org/ver10/colorspace/YCbCr"/></tr2:Color>`+
			`</tr2:Options></tr2:GetMaskOptionsResponse>`, mc.RectangleOnly, mc.MaxMasks, mc.MaxPoints), nil
	case "GetVideoEncoderConfigurations":
		return c.videoEncoder2(a)
	case "GetMasks":
		return c.getMasks(a)
	case "CreateMask", "SetMask":
		mask, f := requestedMask(a, mc)
		if f != nil {
			return "", f
		}
		if action == "CreateMask" {
			return c.createMask(mask)
		}
		return c.setMask(mask)
	case "DeleteMask":
		return c.deleteMask(a.Token)
	}
	return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented: "+action)
}

// videoEncoder2 answers Media2 GetVideoEncoderConfigurations: the only
// place an H.265 camera says H265 (its Media profile says H264, as some
// Dahua firmware does: firmware-notes/h265-media2.md).
func (c *Camera) videoEncoder2(a *reqArgs) (string, *soapError) {
	cfg := c.cfg
	toks := []string{profMain, profSub}
	if a.ProfileToken != "" {
		if f := checkProfile(a.ProfileToken); f != nil {
			return "", f
		}
		toks = []string{a.ProfileToken}
	}
	var b strings.Builder
	b.WriteString(`<tr2:GetVideoEncoderConfigurationsResponse>`)
	for _, tok := range toks {
		w, h, br := cfg.Width, cfg.Height, 4096
		if tok == profSub {
			w, h, br = 640, 360, 512
		}
		fmt.Fprintf(&b, `<tr2:Configurations token="vec-%s" GovLength="%d"><tt:Name>%s</tt:Name><tt:UseCount>1</tt:UseCount>`+
			`<tt:Encoding>%s</tt:Encoding><tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution>`+
			`<tt:RateControl ConstantBitRate="false"><tt:FrameRateLimit>%d</tt:FrameRateLimit><tt:BitrateLimit>%d</tt:BitrateLimit></tt:RateControl>`+
			`<tt:Quality>5</tt:Quality></tr2:Configurations>`, tok, c.gop(), tok, cfg.codec(), w, h, cfg.FPS, br)
	}
	b.WriteString(`</tr2:GetVideoEncoderConfigurationsResponse>`)
	return b.String(), nil
}

func (c *Camera) getMasks(a *reqArgs) (string, *soapError) {
	if a.ConfigurationToken != "" && a.ConfigurationToken != vscToken {
		return "", fault("ter:InvalidArgVal/ter:NoConfig", "no such configuration: "+a.ConfigurationToken)
	}
	var b strings.Builder
	b.WriteString(`<tr2:GetMasksResponse>`)
	for _, m := range c.Masks() {
		if a.Token != "" && m.Token != a.Token {
			continue
		}
		b.WriteString(maskXML(m))
	}
	b.WriteString(`</tr2:GetMasksResponse>`)
	return b.String(), nil
}

// requestedMask checks the Mask of a CreateMask or SetMask request against
// the camera's limits and returns it (with the request's token; a
// rectangle-only camera keeps the polygon's bounding rectangle).
func requestedMask(a *reqArgs, mc MaskConfig) (Mask, *soapError) {
	m := a.Mask
	if m == nil {
		return Mask{}, fault("ter:InvalidArgs", "Mask missing")
	}
	if m.ConfigurationToken != vscToken {
		return Mask{}, fault("ter:InvalidArgVal/ter:NoConfig", "no such configuration: "+m.ConfigurationToken)
	}
	pts := make([][2]float64, 0, len(m.Polygon.Point))
	for _, p := range m.Polygon.Point {
		if p.X < -1 || p.X > 1 || p.Y < -1 || p.Y > 1 || math.IsNaN(p.X) || math.IsNaN(p.Y) {
			return Mask{}, fault("ter:InvalidArgVal/ter:InvalidPolygon", "point out of range")
		}
		pts = append(pts, [2]float64{p.X, p.Y})
	}
	if len(pts) < 3 || len(pts) > mc.MaxPoints {
		return Mask{}, fault("ter:InvalidArgVal/ter:InvalidPolygon", fmt.Sprintf("polygon needs 3..%d points", mc.MaxPoints))
	}
	if mc.RectangleOnly {
		pts = boundingRect(pts)
	}
	switch m.Type {
	case "Color", "Pixelated", "Blurred":
	default:
		return Mask{}, fault("ter:InvalidArgVal/ter:ConfigModify", "unsupported mask type "+m.Type)
	}
	enabled := strings.TrimSpace(m.Enabled)
	mask := Mask{Token: m.Token, Config: m.ConfigurationToken, Points: pts, Type: m.Type, Enabled: enabled == "true" || enabled == "1"}
	if m.Color != nil {
		mask.Color, mask.HasCol = [3]float64{m.Color.X, m.Color.Y, m.Color.Z}, true
	}
	return mask, nil
}

// createMask stores mask under a new token (the request's is ignored).
func (c *Camera) createMask(mask Mask) (string, *soapError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.masks) >= c.cfg.Masks.MaxMasks {
		return "", fault("ter:Action/ter:MaxMasks", "maximum number of masks reached")
	}
	mask.Token = fmt.Sprintf("mask%d", c.nextMask)
	c.nextMask++
	c.masks = append(c.masks, mask)
	return `<tr2:CreateMaskResponse><tr2:Token>` + mask.Token + `</tr2:Token></tr2:CreateMaskResponse>`, nil
}

// setMask replaces the stored mask with mask's token.
func (c *Camera) setMask(mask Mask) (string, *soapError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.masks {
		if c.masks[i].Token == mask.Token {
			c.masks[i] = mask
			return `<tr2:SetMaskResponse></tr2:SetMaskResponse>`, nil
		}
	}
	return "", fault("ter:InvalidArgVal/ter:NoToken", "no such mask: "+mask.Token)
}

func (c *Camera) deleteMask(token string) (string, *soapError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.masks {
		if c.masks[i].Token == token {
			c.masks = append(c.masks[:i], c.masks[i+1:]...)
			return `<tr2:DeleteMaskResponse></tr2:DeleteMaskResponse>`, nil
		}
	}
	return "", fault("ter:InvalidArgVal/ter:NoToken", "no such mask: "+token)
}

func checkProfile(tok string) *soapError {
	if tok != profMain && tok != profSub {
		return fault("ter:InvalidArgVal/ter:NoProfile", "no such profile: "+tok)
	}
	return nil
}

func boundingRect(pts [][2]float64) [][2]float64 {
	minX, minY, maxX, maxY := pts[0][0], pts[0][1], pts[0][0], pts[0][1]
	for _, p := range pts[1:] {
		minX, maxX = math.Min(minX, p[0]), math.Max(maxX, p[0])
		minY, maxY = math.Min(minY, p[1]), math.Max(maxY, p[1])
	}
	return [][2]float64{{minX, maxY}, {maxX, maxY}, {maxX, minY}, {minX, minY}}
}

func maskXML(m Mask) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<tr2:Masks token="%s"><tr2:ConfigurationToken>%s</tr2:ConfigurationToken><tr2:Polygon>`, esc(m.Token), esc(m.Config))
	for _, p := range m.Points {
		fmt.Fprintf(&b, `<tt:Point x="%s" y="%s"/>`, ff(p[0]), ff(p[1]))
	}
	fmt.Fprintf(&b, `</tr2:Polygon><tr2:Type>%s</tr2:Type>`, esc(m.Type))
	if m.HasCol {
		fmt.Fprintf(&b, `<tr2:Color X="%s" Y="%s" Z="%s"/>`, ff(m.Color[0]), ff(m.Color[1]), ff(m.Color[2]))
	}
	fmt.Fprintf(&b, `<tr2:Enabled>%t</tr2:Enabled></tr2:Masks>`, m.Enabled)
	return b.String()
}

func spaceXML(elem, uri string, x Range, y *Range) string {
	s := fmt.Sprintf(`<%s><tt:URI>%s</tt:URI><tt:XRange><tt:Min>%s</tt:Min><tt:Max>%s</tt:Max></tt:XRange>`, elem, uri, ff(x.Min), ff(x.Max))
	if y != nil {
		s += fmt.Sprintf(`<tt:YRange><tt:Min>%s</tt:Min><tt:Max>%s</tt:Max></tt:YRange>`, ff(y.Min), ff(y.Max))
	}
	return s + fmt.Sprintf(`</%s>`, elem)
}

func (c *Camera) spacesXML() string {
	return spaceXML("tt:AbsolutePanTiltPositionSpace", spacePT, Range{-1, 1}, &Range{-1, 1}) +
		spaceXML("tt:AbsoluteZoomPositionSpace", spaceZoom, Range{0, 1}, nil) +
		spaceXML("tt:PanTiltSpeedSpace", spacePTSp, Range{0, 1}, nil) +
		spaceXML("tt:ZoomSpeedSpace", spaceZSp, Range{0, 1}, nil)
}

func (c *Camera) ptzConfigXML(elem string) string {
	pan, tilt, zoom := c.Limits()
	s := fmt.Sprintf(`<%s token="%s" MoveRamp="0" PresetRamp="0" PresetTourRamp="0"><tt:Name>PTZ</tt:Name><tt:UseCount>2</tt:UseCount><tt:NodeToken>%s</tt:NodeToken>`+
		`<tt:DefaultAbsolutePantTiltPositionSpace>%s</tt:DefaultAbsolutePantTiltPositionSpace>`+
		`<tt:DefaultAbsoluteZoomPositionSpace>%s</tt:DefaultAbsoluteZoomPositionSpace>`+
		`<tt:DefaultPTZSpeed><tt:PanTilt x="1" y="1" space="%s"/><tt:Zoom x="1" space="%s"/></tt:DefaultPTZSpeed>`+
		`<tt:DefaultPTZTimeout>PT10S</tt:DefaultPTZTimeout>`,
		elem, ptzCfgTok, ptzNode, spacePT, spaceZoom, spacePTSp, spaceZSp)
	if !c.cfg.PTZ.NoLimits {
		s += `<tt:PanTiltLimits>` + spaceXML("tt:Range", spacePT, pan, &tilt) + `</tt:PanTiltLimits>`
		s += `<tt:ZoomLimits>` + spaceXML("tt:Range", spaceZoom, zoom, nil) + `</tt:ZoomLimits>`
	}
	s += `<tt:Extension><tt:PTControlDirection><tt:EFlip><tt:Mode>OFF</tt:Mode></tt:EFlip><tt:Reverse><tt:Mode>OFF</tt:Mode></tt:Reverse></tt:PTControlDirection></tt:Extension>`
	return s + fmt.Sprintf(`</%s>`, elem)
}

func posXML(elem string, p Position) string {
	return fmt.Sprintf(`<%s><tt:PanTilt x="%s" y="%s" space="%s"/><tt:Zoom x="%s" space="%s"/></%s>`,
		elem, ff(round(p.Pan)), ff(round(p.Tilt)), spacePT, ff(round(p.Zoom)), spaceZoom, elem)
}

func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// ptz answers the PTZ service. Actions that name a profile check it first.
func (c *Camera) ptz(action string, a *reqArgs) (string, *soapError) {
	switch action {
	case "GetServiceCapabilities":
		return `<tptz:GetServiceCapabilitiesResponse><tptz:Capabilities EFlip="false" Reverse="false" GetCompatibleConfigurations="true" MoveStatus="true" StatusPosition="true"/></tptz:GetServiceCapabilitiesResponse>`, nil
	case "GetNodes", "GetNode":
		return c.ptzNodes(action, a)
	case "GetConfigurations", "GetConfiguration", "GetConfigurationOptions":
		return c.ptzConfigurations(action, a)
	case "SetConfiguration":
		return c.ptzSetConfiguration(a)
	case "Stop":
		return c.ptzStop()
	case "GetPresets", "GotoPreset", "GotoHomePosition", "SetPreset", "RemovePreset", "AbsoluteMove", "GetStatus":
		if f := checkProfile(a.ProfileToken); f != nil {
			return "", f
		}
		return c.ptzOnProfile(action, a)
	}
	return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented: "+action)
}

// ptzOnProfile answers the PTZ actions that act on a (checked) profile.
func (c *Camera) ptzOnProfile(action string, a *reqArgs) (string, *soapError) {
	switch action {
	case "GetPresets":
		return c.ptzGetPresets(), nil
	case "GotoPreset":
		return c.ptzGotoPreset(a)
	case "GotoHomePosition":
		c.mu.Lock()
		defer c.mu.Unlock()
		h := c.cfg.PTZ.Home
		c.moveLocked(Position{h.Pan, h.Tilt, h.Zoom}, true)
		return `<tptz:GotoHomePositionResponse></tptz:GotoHomePositionResponse>`, nil
	case "SetPreset":
		return c.ptzSetPreset(a)
	case "RemovePreset":
		return c.ptzRemovePreset(a)
	case "AbsoluteMove":
		return c.ptzAbsoluteMove(a)
	case "GetStatus":
		return c.ptzGetStatus(), nil
	}
	return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented: "+action)
}

func (c *Camera) ptzNodes(action string, a *reqArgs) (string, *soapError) {
	if action == "GetNode" && a.NodeToken != ptzNode {
		return "", fault("ter:InvalidArgVal/ter:NoEntity", "no such node")
	}
	elem := "tptz:PTZNode"
	node := fmt.Sprintf(`<%s token="%s" FixedHomePosition="false" GeoMove="false"><tt:Name>PTZ Node</tt:Name><tt:SupportedPTZSpaces>%s</tt:SupportedPTZSpaces>`+
		`<tt:MaximumNumberOfPresets>%d</tt:MaximumNumberOfPresets><tt:HomeSupported>true</tt:HomeSupported></%s>`,
		elem, ptzNode, c.spacesXML(), c.cfg.PTZ.MaxPresets, elem)
	return `<tptz:` + action + `Response>` + node + `</tptz:` + action + `Response>`, nil
}

func (c *Camera) ptzConfigurations(action string, a *reqArgs) (string, *soapError) {
	switch action {
	case "GetConfigurations":
		return `<tptz:GetConfigurationsResponse>` + c.ptzConfigXML("tptz:PTZConfiguration") + `</tptz:GetConfigurationsResponse>`, nil
	case "GetConfiguration":
		if a.PTZConfigurationToken != ptzCfgTok {
			return "", fault("ter:InvalidArgVal/ter:NoConfig", "no such configuration: "+a.PTZConfigurationToken)
		}
		return `<tptz:GetConfigurationResponse>` + c.ptzConfigXML("tptz:PTZConfiguration") + `</tptz:GetConfigurationResponse>`, nil
	case "GetConfigurationOptions":
		if a.ConfigurationToken != ptzCfgTok {
			return "", fault("ter:InvalidArgVal/ter:NoConfig", "no such configuration: "+a.ConfigurationToken)
		}
		return `<tptz:GetConfigurationOptionsResponse><tptz:PTZConfigurationOptions><tt:Spaces>` + c.spacesXML() + `</tt:Spaces>` +
			`<tt:PTZTimeout><tt:Min>PT1S</tt:Min><tt:Max>PT60S</tt:Max></tt:PTZTimeout></tptz:PTZConfigurationOptions></tptz:GetConfigurationOptionsResponse>`, nil
	}
	return "", fault("ter:ActionNotSupported", "Optional Action Not Implemented: "+action)
}

// ptzSetConfiguration sets pan/tilt and zoom limits; they bound motion at
// once.
func (c *Camera) ptzSetConfiguration(a *reqArgs) (string, *soapError) {
	pc := a.PTZConfiguration
	if pc == nil || pc.Token != ptzCfgTok {
		return "", fault("ter:InvalidArgVal/ter:NoConfig", "no such configuration")
	}
	if c.cfg.PTZ.NoLimits && (pc.PanTiltLimits != nil || pc.ZoomLimits != nil) {
		return "", fault("ter:InvalidArgVal/ter:ConfigModify", "limits not supported")
	}
	var pan, tilt, zoom Range
	var err error
	if l := pc.PanTiltLimits; l != nil {
		if pan, tilt, err = parseLimits(l.Range, true); err != nil {
			return "", fault("ter:InvalidArgVal/ter:ConfigModify", "bad pan/tilt limits: "+err.Error())
		}
	}
	if l := pc.ZoomLimits; l != nil {
		if zoom, _, err = parseLimits(l.Range, false); err != nil {
			return "", fault("ter:InvalidArgVal/ter:ConfigModify", "bad zoom limits: "+err.Error())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if pc.PanTiltLimits != nil {
		c.panLim, c.tiltLim = pan, tilt
	}
	if pc.ZoomLimits != nil {
		c.zoomLim = zoom
	}
	// Limits bound motion at once: re-target a running move.
	c.moveLocked(c.target, true)
	return `<tptz:SetConfigurationResponse></tptz:SetConfigurationResponse>`, nil
}

func (c *Camera) ptzGetPresets() string {
	var b strings.Builder
	b.WriteString(`<tptz:GetPresetsResponse>`)
	for _, p := range c.Presets() {
		fmt.Fprintf(&b, `<tptz:Preset token="%s"><tt:Name>%s</tt:Name>%s</tptz:Preset>`, esc(p.Token), esc(p.Name),
			posXML("tt:PTZPosition", Position{p.Pan, p.Tilt, p.Zoom}))
	}
	b.WriteString(`</tptz:GetPresetsResponse>`)
	return b.String()
}

func (c *Camera) ptzGotoPreset(a *reqArgs) (string, *soapError) {
	if f := checkSpeed(a.Speed); f != nil {
		return "", f
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.presetLocked(a.PresetToken)
	if !ok {
		return "", fault("ter:InvalidArgVal/ter:NoToken", "no such preset: "+a.PresetToken)
	}
	c.moveLocked(c.presets[i].pos, true)
	return `<tptz:GotoPresetResponse></tptz:GotoPresetResponse>`, nil
}

// ptzSetPreset stores the current position: in the named preset when a
// token is given, else in a new one.
func (c *Camera) ptzSetPreset(a *reqArgs) (string, *soapError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, _ := c.posLocked(time.Now())
	if a.PresetToken != "" {
		i, ok := c.presetLocked(a.PresetToken)
		if !ok {
			return "", fault("ter:InvalidArgVal/ter:NoToken", "no such preset: "+a.PresetToken)
		}
		c.presets[i].pos = cur
		if a.PresetName != "" {
			c.presets[i].name = a.PresetName
		}
		return `<tptz:SetPresetResponse><tptz:PresetToken>` + esc(a.PresetToken) + `</tptz:PresetToken></tptz:SetPresetResponse>`, nil
	}
	for _, p := range c.presets {
		if a.PresetName != "" && p.name == a.PresetName {
			return "", fault("ter:InvalidArgVal/ter:PresetExist", "preset name exists: "+a.PresetName)
		}
	}
	if len(c.presets) >= c.cfg.PTZ.MaxPresets {
		return "", fault("ter:Action/ter:TooManyPresets", "too many presets")
	}
	tok := strconv.Itoa(c.nextPreset)
	c.nextPreset++
	c.presets = append(c.presets, preset{token: tok, name: a.PresetName, pos: cur})
	return `<tptz:SetPresetResponse><tptz:PresetToken>` + tok + `</tptz:PresetToken></tptz:SetPresetResponse>`, nil
}

func (c *Camera) ptzRemovePreset(a *reqArgs) (string, *soapError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.presetLocked(a.PresetToken)
	if !ok {
		return "", fault("ter:InvalidArgVal/ter:NoToken", "no such preset: "+a.PresetToken)
	}
	c.presets = append(c.presets[:i], c.presets[i+1:]...)
	return `<tptz:RemovePresetResponse></tptz:RemovePresetResponse>`, nil
}

// ptzAbsoluteMove moves to a position in the generic spaces; an axis left
// out keeps its current target.
func (c *Camera) ptzAbsoluteMove(a *reqArgs) (string, *soapError) {
	if f := checkSpeed(a.Speed); f != nil {
		return "", f
	}
	if a.Position == nil || (a.Position.PanTilt == nil && a.Position.Zoom == nil) {
		return "", fault("ter:InvalidArgs", "Position missing")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.target
	if p := a.Position.PanTilt; p != nil {
		if p.Space != "" && p.Space != spacePT {
			return "", fault("ter:InvalidArgVal/ter:SpaceNotSupported", "space not supported: "+p.Space)
		}
		if p.X < -1 || p.X > 1 || p.Y < -1 || p.Y > 1 {
			return "", fault("ter:InvalidArgVal/ter:InvalidPosition", "position out of range")
		}
		t.Pan, t.Tilt = p.X, p.Y
	}
	if z := a.Position.Zoom; z != nil {
		if z.Space != "" && z.Space != spaceZoom {
			return "", fault("ter:InvalidArgVal/ter:SpaceNotSupported", "space not supported: "+z.Space)
		}
		if z.X < 0 || z.X > 1 {
			return "", fault("ter:InvalidArgVal/ter:InvalidPosition", "zoom out of range")
		}
		t.Zoom = z.X
	}
	c.moveLocked(t, true)
	return `<tptz:AbsoluteMoveResponse></tptz:AbsoluteMoveResponse>`, nil
}

func (c *Camera) ptzStop() (string, *soapError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, _ := c.posLocked(time.Now())
	c.moveLocked(cur, false)
	return `<tptz:StopResponse></tptz:StopResponse>`, nil
}

// ptzGetStatus reports position and motion (always IDLE with the
// move_status_stuck quirk).
func (c *Camera) ptzGetStatus() string {
	pos, moving := c.Position()
	st := "IDLE"
	if moving && !c.cfg.Quirk.MoveStatusStuck {
		st = "MOVING"
	}
	return `<tptz:GetStatusResponse><tptz:PTZStatus>` + posXML("tt:Position", pos) +
		`<tt:MoveStatus><tt:PanTilt>` + st + `</tt:PanTilt><tt:Zoom>` + st + `</tt:Zoom></tt:MoveStatus>` +
		`<tt:UtcTime>` + c.Clock().Format("2006-01-02T15:04:05Z") + `</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse>`
}

// checkSpeed refuses a Speed whose vector has an empty space and zero
// values, as strict cameras do (ter:SpaceNotSupported).
func checkSpeed(s *reqVector) *soapError {
	if s == nil {
		return nil
	}
	if pt := s.PanTilt; pt != nil && pt.Space == "" && pt.X == 0 && pt.Y == 0 {
		return fault("ter:InvalidArgVal/ter:SpaceNotSupported", "zero speed in empty space")
	}
	if z := s.Zoom; z != nil && z.Space == "" && z.X == 0 {
		return fault("ter:InvalidArgVal/ter:SpaceNotSupported", "zero speed in empty space")
	}
	return nil
}

func parseLimits(r reqRange, twoD bool) (x, y Range, err error) {
	get := func(min, max string, lo, hi float64) (Range, error) {
		a, err1 := parseXSFloat(min)
		b, err2 := parseXSFloat(max)
		if err1 != nil || err2 != nil {
			return Range{}, fmt.Errorf("not a number")
		}
		if a > b {
			return Range{}, fmt.Errorf("min > max")
		}
		// INF/-INF disable the bound (kept as given, so it reads back);
		// the node range still applies to motion.
		if a > hi || b < lo {
			return Range{}, fmt.Errorf("range outside %g..%g", lo, hi)
		}
		return Range{a, b}, nil
	}
	if twoD {
		if x, err = get(r.XRange.Min, r.XRange.Max, -1, 1); err != nil {
			return
		}
		if r.YRange == nil {
			return x, y, fmt.Errorf("YRange missing")
		}
		y, err = get(r.YRange.Min, r.YRange.Max, -1, 1)
		return
	}
	x, err = get(r.XRange.Min, r.XRange.Max, 0, 1)
	return
}
