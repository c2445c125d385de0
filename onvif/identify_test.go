package onvif_test

import (
	"fmt"
	"testing"

	"velo/internal/testkit"
	"velo/onvif"
	"velo/onvif/camsim"
)

// A camera that advertises a wrong IP in its ProbeMatch XAddrs is still
// identified at the address it answered from (firmware-notes/generic-oem.md).
func TestIdentifyRewritesAdvertisedIP(t *testing.T) {
	// The advertised XAddr keeps the camera's real port, so it is known
	// before the camera starts.
	cfg := simCam("oemd")
	port := testkit.FreePortOn(t, cfg.Address)
	wrong := fmt.Sprintf("127.0.0.254:%d", port)
	cfg.HTTPPort, cfg.Quirk.WrongXAddrHost = port, wrong
	sim := camsim.StartForTest(t, cfg)
	addr := sim.Camera("oemd").Config().Address
	dev := onvif.Device{Endpoint: "urn:uuid:x", From: addr, XAddrs: []string{"http://" + wrong + "/onvif/device_service"}}
	allow, _ := onvif.ParseAllowList([]string{addr})
	id := onvif.Identify(ctxT(t), dev, &onvif.Credentials{Username: testUser, Password: testPass}, allow)
	if !id.XAddrRewritten || id.XAddr != fmt.Sprintf("http://%s:%d/onvif/device_service", addr, port) {
		t.Fatalf("identity %+v", id)
	}
	if id.Info == nil || id.Info.SerialNumber != "SIM-oemd" {
		t.Errorf("not identified: %+v", id)
	}
	// Without the rewrite the advertised address answers nothing.
	dev.From = ""
	if id := onvif.Identify(ctxT(t), dev, nil, allow); id.Error == "" || id.Info != nil {
		t.Errorf("advertised wrong address reachable? %+v", id)
	}
}

func TestAllowList(t *testing.T) {
	a, err := onvif.ParseAllowList([]string{"192.0.2.0/28", "198.51.100.7"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"http://192.0.2.5/onvif":      true,
		"http://192.0.2.16/onvif":     false,
		"http://198.51.100.7:8080/x":  true,
		"http://198.51.100.8/x":       false,
		"http://camera.example/x":     false, // names are never trusted
		"http://[::ffff:192.0.2.3]/x": true,
		"::bad":                       false,
	}
	for u, want := range cases {
		if got := a.Allows(u); got != want {
			t.Errorf("Allows(%q) = %t, want %t", u, got, want)
		}
	}
	if _, err := onvif.ParseAllowList([]string{"not-an-ip"}); err == nil {
		t.Error("bad entry accepted")
	}
}
