package onvif_test

import (
	"encoding/xml"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"velo/onvif"
)

const agshDir = "testdata/agsh-onvif-npm-0.8.1"

var templateLine = regexp.MustCompile(`(?m)^\s*\{\{[^}]*\}\}\s*$\n?`)

// renderFixture reads a captured reply and renders the doT markers (see
// testdata/agsh-onvif-npm-0.8.1/ATTRIBUTION.md).
func renderFixture(t *testing.T, name, serviceURI string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(agshDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s := templateLine.ReplaceAllString(string(data), "")
	return []byte(strings.ReplaceAll(s, "SERVICE_URI", serviceURI))
}

var fixtureFor = map[string]string{
	"GetSystemDateAndTime": "GetSystemDateAndTime.xml", "GetDeviceInformation": "GetDeviceInformation.xml",
	"GetServices": "GetServices.xml", "GetCapabilities": "GetCapabilities.xml", "GetHostname": "GetHostname.xml",
	"GetProfiles": "GetProfiles.xml", "GetStreamUri": "GetStreamUri.xml", "GetSnapshotUri": "GetSnapshotUri.xml",
	"GetNodes": "GetNodes.xml", "GetConfigurations": "GetConfigurations.xml", "GetConfigurationOptions": "GetConfigurationOptions.xml",
	"GetPresets": "ptz.GetPresets.xml", "GetStatus": "GetStatus.xml", "GotoPreset": "ptz.GotoPreset.xml",
	"SetPreset": "ptz.SetPreset.xml", "RemovePreset": "ptz.RemovePreset.xml", "AbsoluteMove": "ptz.AbsoluteMove.xml",
}

// fixtureServer replays the captured replies by request element.
func fixtureServer(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct {
			Body struct {
				Inner struct{ XMLName xml.Name } `xml:",any"`
			} `xml:"Body"`
		}
		if err := xml.Unmarshal(body, &env); err != nil {
			http.Error(w, "bad request", 400)
			return
		}
		name, ok := fixtureFor[env.Body.Inner.XMLName.Local]
		if !ok {
			t.Errorf("no fixture for %s", env.Body.Inner.XMLName.Local)
			http.Error(w, "no fixture", 500)
			return
		}
		w.Header().Set("Content-Type", "application/soap+xml")
		_, _ = w.Write(renderFixture(t, name, srv.URL+"/onvif/device_service"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fixtureClient(t *testing.T) *onvif.Client {
	srv := fixtureServer(t)
	c, err := onvif.NewClient(onvif.Config{XAddr: srv.URL + "/onvif/device_service", Username: "admin", Password: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCapturedPresets(t *testing.T) {
	c := fixtureClient(t)
	ps, err := c.GetPresets(ctxT(t), "MainStream")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 46 {
		t.Fatalf("got %d presets, want all 46", len(ps))
	}
	tokens := map[string]bool{}
	names := map[string]int{}
	for _, p := range ps {
		tokens[p.Token] = true
		names[p.Name]++
	}
	if len(tokens) != 46 {
		t.Errorf("%d distinct tokens, want 46", len(tokens))
	}
	if names["Home"] != 2 {
		t.Errorf("duplicate name Home seen %d times, want 2 (both kept)", names["Home"])
	}
	if ps[0].Token != "P001" {
		t.Errorf("first token %q", ps[0].Token)
	}
}

func TestCapturedStatus(t *testing.T) {
	c := fixtureClient(t)
	st, err := c.GetStatus(ctxT(t), "MainStream")
	if err != nil {
		t.Fatal(err)
	}
	p := st.Position
	if p == nil || p.PanTilt == nil || p.Zoom == nil {
		t.Fatalf("position %+v", p)
	}
	if math.Abs(float64(p.PanTilt.X)+0.864665985) > 1e-9 || math.Abs(float64(p.PanTilt.Y)-0.267444015) > 1e-9 || math.Abs(float64(p.Zoom.X)-0.211861998) > 1e-9 {
		t.Errorf("position = %v", p)
	}
	if p.PanTilt.Space != onvif.SpacePanTiltGeneric || st.MoveStatus.PanTilt != "IDLE" || st.MoveStatus.Zoom != "IDLE" || st.UtcTime != "2014-12-29T20:01:31Z" {
		t.Errorf("status = %+v", st)
	}
}

func TestCapturedDevice(t *testing.T) {
	srv := fixtureServer(t)
	c, err := onvif.NewClient(onvif.Config{XAddr: srv.URL + "/onvif/device_service", Username: "admin", Password: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	st, err := c.GetSystemDateAndTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.UTC.Format("2006-01-02T15:04:05") != "2014-12-24T19:14:37" || st.TZ != "MoroccoStandardTime0" || !st.DST {
		t.Errorf("time = %+v", st)
	}
	svcs, err := c.GetServices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 6 {
		t.Fatalf("%d services, want all 6", len(svcs))
	}
	for _, s := range svcs {
		if s.Namespace == "" || s.XAddr == "" || s.Version.Major == 0 {
			t.Errorf("incomplete service %+v", s)
		}
	}
	// Connect: the capture's XAddrs point at 192.168.68.111; the rewrite
	// keeps us on the address we were given.
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if a := c.ServiceAddr(onvif.NSPTZ); !strings.HasPrefix(a, srv.URL) {
		t.Errorf("PTZ service at %q, want rewritten to %s", a, srv.URL)
	}
	info, err := c.GetDeviceInformation(ctx)
	if err != nil || info.Manufacturer == "" || info.Model == "" || info.FirmwareVersion == "" || info.SerialNumber == "" || info.HardwareID == "" {
		t.Errorf("info = %+v, %v", info, err)
	}
	if h, err := c.GetHostname(ctx); err != nil || h == "" {
		t.Errorf("hostname %q %v", h, err)
	}
	caps, err := c.GetCapabilities(ctx)
	if err != nil || caps.Media == "" || caps.PTZ == "" {
		t.Errorf("capabilities = %+v, %v", caps, err)
	}
	profs, err := c.GetProfiles(ctx)
	if err != nil || len(profs) == 0 {
		t.Fatalf("profiles = %+v %v", profs, err)
	}
	e := profs[0].Encoder
	if e == nil || e.Encoding == "" || e.Resolution.Width == 0 || e.RateControl == nil || e.RateControl.FrameRateLimit == 0 {
		t.Errorf("encoder fields empty: %+v", e)
	}
	if u, err := c.GetStreamURI(ctx, profs[0].Token); err != nil || !strings.HasPrefix(u, "rtsp://") {
		t.Errorf("stream uri %q %v", u, err)
	}
	if u, err := c.GetSnapshotURI(ctx, profs[0].Token); err != nil || !strings.HasPrefix(u, "http") {
		t.Errorf("snapshot uri %q %v", u, err)
	}
	nodes, err := c.GetNodes(ctx)
	if err != nil || len(nodes) == 0 || len(nodes[0].Spaces.AbsolutePanTilt) == 0 {
		t.Errorf("nodes = %+v %v", nodes, err)
	}
	cfgs, err := c.GetConfigurations(ctx)
	if err != nil || len(cfgs) == 0 || cfgs[0].Token == "" {
		t.Fatalf("configurations = %+v %v", cfgs, err)
	}
	opt, err := c.GetConfigurationOptions(ctx, cfgs[0].Token)
	if err != nil || len(opt.Spaces.AbsolutePanTilt) == 0 {
		t.Errorf("options = %+v %v", opt, err)
	}
	for _, call := range []func() error{
		func() error { return c.GotoPreset(ctx, "MainStream", "P001") },
		func() error { return c.RemovePreset(ctx, "MainStream", "P001") },
		func() error { return c.AbsoluteMove(ctx, "MainStream", pos(0, 0, 0)) },
	} {
		if err := call(); err != nil {
			t.Error(err)
		}
	}
	if tok, err := c.SetPreset(ctx, "MainStream", "x", ""); err != nil || tok == "" {
		t.Errorf("SetPreset = %q %v", tok, err)
	}
}

func TestCapturedProbeMatch(t *testing.T) {
	data := renderFixture(t, "Probe.xml", "http://192.0.2.7/onvif/device_service http://[2001:db8::7]/onvif/device_service not-a-url")
	devs, _, err := onvif.ParseDiscoveryMessage(data)
	if err != nil || len(devs) != 1 {
		t.Fatalf("devs = %+v, %v", devs, err)
	}
	d := devs[0]
	if d.Endpoint != "uuid:c9790c3a-701b-464d-a189-0060351c8ada" || d.Name != "PREDATOR" || d.Hardware != "HD_PREDATOR" {
		t.Errorf("device = %+v", d)
	}
	if len(d.XAddrs) != 2 || d.XAddrs[1] != "http://[2001:db8::7]/onvif/device_service" {
		t.Errorf("xaddrs = %q (IPv6 kept, junk dropped)", d.XAddrs)
	}
	if strings.Join(d.Types, " ") != "dn:NetworkVideoTransmitter tds:Device" {
		t.Errorf("types = %q", d.Types)
	}
}
