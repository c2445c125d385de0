package onvif_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"velo/onvif"
	"velo/onvif/camsim"
)

// op is one client operation and the SOAP action it sends.
type op struct {
	action string
	call   func(context.Context, *onvif.Client) error
}

func allOps() []op {
	tri := imgPoly(0.1, 0.1, 0.3, 0.1, 0.2, 0.3)
	return []op{
		{"GetDeviceInformation", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetDeviceInformation(ctx); return err }},
		{"GetServices", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetServices(ctx); return err }},
		{"GetCapabilities", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetCapabilities(ctx); return err }},
		{"GetHostname", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetHostname(ctx); return err }},
		{"GetSystemDateAndTime", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetSystemDateAndTime(ctx); return err }},
		{"GetProfiles", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetProfiles(ctx); return err }},
		{"GetStreamUri", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetStreamURI(ctx, "main"); return err }},
		{"GetSnapshotUri", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetSnapshotURI(ctx, "main"); return err }},
		{"GetMaskOptions", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetMaskOptions(ctx, "vsc0"); return err }},
		{"GetMasks", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetMasks(ctx, "vsc0"); return err }},
		{"CreateMask", func(ctx context.Context, c *onvif.Client) error {
			_, err := c.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: tri, Type: "Color", Enabled: true})
			return err
		}},
		{"SetMask", func(ctx context.Context, c *onvif.Client) error {
			return c.SetMask(ctx, onvif.Mask{Token: "mask1", ConfigurationToken: "vsc0", Polygon: tri, Type: "Color", Enabled: true})
		}},
		{"DeleteMask", func(ctx context.Context, c *onvif.Client) error { return c.DeleteMask(ctx, "mask1") }},
		{"GetNodes", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetNodes(ctx); return err }},
		{"GetConfigurations", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetConfigurations(ctx); return err }},
		{"GetConfiguration", func(ctx context.Context, c *onvif.Client) error {
			_, err := c.GetConfiguration(ctx, "ptzcfg0")
			return err
		}},
		{"GetConfigurationOptions", func(ctx context.Context, c *onvif.Client) error {
			_, err := c.GetConfigurationOptions(ctx, "ptzcfg0")
			return err
		}},
		{"SetConfiguration", func(ctx context.Context, c *onvif.Client) error {
			_, err := c.SetLimits(ctx, "ptzcfg0", nil, &onvif.Limits{XRange: onvif.FloatRange{Min: 0, Max: 0.5}})
			return err
		}},
		{"GetPresets", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetPresets(ctx, "main"); return err }},
		{"GotoPreset", func(ctx context.Context, c *onvif.Client) error { return c.GotoPreset(ctx, "main", "1") }},
		{"SetPreset", func(ctx context.Context, c *onvif.Client) error {
			_, err := c.SetPreset(ctx, "main", "x", "")
			return err
		}},
		{"RemovePreset", func(ctx context.Context, c *onvif.Client) error { return c.RemovePreset(ctx, "main", "1") }},
		{"AbsoluteMove", func(ctx context.Context, c *onvif.Client) error { return c.AbsoluteMove(ctx, "main", pos(0, 0, 0)) }},
		{"GetStatus", func(ctx context.Context, c *onvif.Client) error { _, err := c.GetStatus(ctx, "main"); return err }},
	}
}

// Every operation turns every kind of SOAP fault into the right typed error.
func TestFaultsOnEveryCall(t *testing.T) {
	faults := []struct {
		subcode string
		want    error
	}{
		{"ter:InvalidArgVal/ter:NoProfile", onvif.ErrInvalidArgument},
		{"ter:ActionNotSupported", onvif.ErrNotSupported},
		{"ter:NotAuthorized", onvif.ErrUnauthorized},
		{"ter:Action/ter:Busy", onvif.ErrDevice},
	}
	sim := camsim.StartForTest(t, simCam("faulty"))
	cam := sim.Camera("faulty")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, o := range allOps() {
		for _, f := range faults {
			t.Run(o.action+"/"+f.subcode, func(t *testing.T) {
				cam.SetFault(o.action, f.subcode)
				defer cam.SetFault(o.action, "")
				err := o.call(ctx, c)
				if !errors.Is(err, f.want) {
					t.Fatalf("err = %v, want %v", err, f.want)
				}
				var fe *onvif.FaultError
				if !errors.As(err, &fe) {
					t.Fatalf("err %v is not a *FaultError", err)
				}
				last := f.subcode[strings.LastIndex(f.subcode, ":")+1:]
				if !errors.Is(err, onvif.Subcode(last)) {
					t.Errorf("subcodes %v lack %s", fe.Subcodes, last)
				}
				if !strings.Contains(err.Error(), o.action) && o.action != "SetConfiguration" {
					t.Errorf("error does not name the operation: %v", err)
				}
			})
		}
	}
}

// Vendor prefixes (SOAP-ENV:, dev:, sch: …) and chunked replies decode the
// same as the plain form.
func TestQuirkVendorNamespacesAndChunked(t *testing.T) {
	sim := camsim.StartForTest(t,
		simCam("vendor", func(c *camsim.CameraConfig) { c.Quirk.VendorNamespaces = true }),
		simCam("chunk", func(c *camsim.CameraConfig) { c.Quirk.Chunked = true }))
	for _, id := range []string{"vendor", "chunk"} {
		t.Run(id, func(t *testing.T) {
			c := newClient(t, sim.Camera(id))
			ctx := ctxT(t)
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			ps, err := c.GetPresets(ctx, "main")
			if err != nil || len(ps) != 3 || !near(ps[1].Position, 0.5, 0.25, 0.5, 1e-9) {
				t.Fatalf("presets = %+v, %v", ps, err)
			}
			prof, err := c.GetProfiles(ctx)
			if err != nil || len(prof) != 2 || prof[0].Encoder == nil || prof[0].Encoder.Resolution.Width != 1920 {
				t.Fatalf("profiles = %+v, %v", prof, err)
			}
			if err := c.GotoPreset(ctx, "main", "99"); !errors.Is(err, onvif.Subcode("NoToken")) {
				t.Errorf("fault with vendor prefixes: %v", err)
			}
		})
	}
}

// Cheap OEM firmware reports a wrong host:port in every XAddr; the client
// rewrites service addresses to the configured host (firmware-notes/generic-oem.md).
func TestQuirkWrongXAddrHost(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("oem", func(c *camsim.CameraConfig) { c.Quirk.WrongXAddrHost = "127.0.0.254:1" }))
	cam := sim.Camera("oem")
	t.Run("rewritten", func(t *testing.T) {
		c := newClient(t, cam)
		ctx := ctxT(t)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if a := c.ServiceAddr(onvif.NSPTZ); !strings.HasPrefix(a, "http://"+cam.Config().Address) {
			t.Errorf("PTZ address %q not rewritten", a)
		}
		if _, err := c.GetPresets(ctx, "main"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("without the workaround", func(t *testing.T) {
		c := newClient(t, cam, func(cfg *onvif.Config) { cfg.KeepXAddrHost = true })
		ctx := ctxT(t)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetPresets(ctx, "main"); err == nil {
			t.Fatal("GetPresets via the advertised (wrong) address succeeded: the quirk is not exercised")
		}
	})
}

// Old firmware without GetServices: Connect falls back to GetCapabilities.
func TestQuirkNoGetServices(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("old", func(c *camsim.CameraConfig) { c.Quirk.NoGetServices = true }))
	cam := sim.Camera("old")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.HasService(onvif.NSPTZ) || !c.HasService(onvif.NSMedia) {
		t.Fatal("capabilities fallback did not find Media and PTZ")
	}
	if cam.Calls("GetCapabilities") != 1 {
		t.Errorf("GetCapabilities calls = %d", cam.Calls("GetCapabilities"))
	}
	if _, err := c.GetStatus(ctx, "main"); err != nil {
		t.Fatal(err)
	}
}

// GotoPreset sends no Speed; strict cameras refuse a zero speed in an empty
// space (ter:SpaceNotSupported), which use-go/onvif v0.0.9 always sends.
func TestGotoPresetSendsNoSpeed(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("strict", func(c *camsim.CameraConfig) { c.Auth = camsim.AuthNone }))
	cam := sim.Camera("strict")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.GotoPreset(ctx, "main", "2"); err != nil {
		t.Fatalf("GotoPreset: %v", err)
	}
	// The same request with use-go's bogus Speed is refused by the camera.
	err := rawCall(ctx, t, cam, `<tptz:GotoPreset xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">`+
		`<tptz:ProfileToken>main</tptz:ProfileToken><tptz:PresetToken>2</tptz:PresetToken>`+
		`<tptz:Speed><tt:PanTilt x="0" y="0" space=""/><tt:Zoom x="0" space=""/></tptz:Speed></tptz:GotoPreset>`)
	if !strings.Contains(err, "SpaceNotSupported") {
		t.Errorf("zero speed accepted by the simulator: %s", err)
	}
}

// rawCall posts an unauthenticated SOAP body and returns the reply text.
func rawCall(ctx context.Context, t *testing.T, cam *camsim.Camera, body string) string {
	t.Helper()
	env := `<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>` + body + `</s:Body></s:Envelope>`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cam.XAddr(), strings.NewReader(env))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/soap+xml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(data)
}
