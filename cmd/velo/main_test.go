package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"velo/internal/testkit"
	"velo/onvif/camsim"
)

const pw = "Cli-Secret-77"

// simCameras are the cameras of the discover and probe tests: a PTZ
// camera (WS-Security) and a fixed one (HTTP digest), without video.
func simCameras() []camsim.CameraConfig {
	ptz := &camsim.PTZConfig{Presets: []camsim.PresetConfig{{Token: "1", Name: "a"}, {Token: "2", Name: "a", Pan: 0.5}}}
	return []camsim.CameraConfig{
		{ID: "c1", Address: "127.0.98.1", NoVideo: true, Username: "op", Password: pw, PTZ: ptz, Scene: "ptz"},
		{ID: "c2", Address: "127.0.98.2", NoVideo: true, Username: "op", Password: pw, Auth: camsim.AuthDigest},
	}
}

func startCams(t *testing.T) *camsim.Sim {
	t.Helper()
	return camsim.StartForTest(t, simCameras()...)
}

// startDiscoverableCams starts simCameras answering unicast WS-Discovery
// on port 3702, which camsim.StartForTest turns off.
func startDiscoverableCams(t *testing.T) {
	t.Helper()
	on := true
	camsim.StartConfigForTest(t, camsim.Config{Discovery: camsim.DiscoveryConfig{Unicast: &on, UnicastPort: 3702}, Cameras: simCameras()})
}

func pwFile(t *testing.T) string { return testkit.SecretFile(t, t.TempDir(), "pw", pw+"\n") }

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	all := out.String() + errb.String()
	if strings.Contains(all, pw) {
		t.Errorf("output contains the password:\n%s", all)
	}
	return out.String(), errb.String(), code
}

func TestDiscoverJSON(t *testing.T) {
	startDiscoverableCams(t)
	out, errs, code := runCLI(t, "discover", "--no-multicast", "--unicast", "127.0.98.0/30", "--window", "700ms",
		"--user", "op", "--password-file", pwFile(t), "--allow", "127.0.98.1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []discoverRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	if r := rows[0]; r.Address != "127.0.98.1" || r.Manufacturer != "Velo-Sim" || r.Serial != "SIM-c1" || !r.NeedsAuth || r.Withheld {
		t.Errorf("row 1 = %+v", r)
	}
	if r := rows[1]; r.Address != "127.0.98.2" || r.Serial != "" || !r.NeedsAuth || !r.Withheld {
		t.Errorf("row 2 (not on allow-list) = %+v", r)
	}
}

func TestProbeJSONAndText(t *testing.T) {
	sim := startCams(t)
	for _, id := range []string{"c1", "c2"} {
		x := sim.Camera(id).XAddr()
		out, errs, code := runCLI(t, "probe", "--xaddr", x, "--user", "op", "--password-file", pwFile(t), "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", id, code, errs)
		}
		var rep probeReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Info.SerialNumber != "SIM-"+id || len(rep.Profiles) != 2 || !rep.Media2 || rep.Masks == nil || rep.Masks.Options.MaxMasks == 0 {
			t.Errorf("%s: report %+v", id, rep)
		}
		if p := rep.Profiles[0]; p.Codec != "H264" || p.CodecFrom != "Media2 video encoder configuration" || p.Decoder != "avdec_h264" {
			t.Errorf("%s: codec %q from %q, decoder %q: want H264 from Media2, avdec_h264", id, p.Codec, p.CodecFrom, p.Decoder)
		}
		if id == "c1" {
			if rep.PTZ == nil || len(rep.PTZ.Presets) != 2 || rep.PTZ.Presets[1].Position == nil || len(rep.PTZ.Spaces.AbsolutePanTilt) != 1 {
				t.Errorf("ptz = %+v", rep.PTZ)
			}
		} else if rep.PTZ != nil {
			t.Errorf("fixed camera reports PTZ")
		}
		text, _, code := runCLI(t, "probe", "--xaddr", x, "--user", "op", "--password-file", pwFile(t))
		if code != 0 || !strings.Contains(text, "SIM-"+id) || !strings.Contains(text, "Profiles") {
			t.Errorf("text output:\n%s", text)
		}
	}
}

func TestCLIErrors(t *testing.T) {
	sim := startCams(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "Usage"},
		{"unknown", []string{"frobnicate"}, 2, "unknown command"},
		{"probe without xaddr", []string{"probe"}, 2, "--xaddr is required"},
		{"missing password file", []string{"probe", "--xaddr", sim.Camera("c1").XAddr(), "--user", "op", "--password-file", "/nonexistent/pw"}, 1, "/nonexistent/pw"},
		{"user without allow", []string{"discover", "--user", "op", "--password-file", "/x"}, 2, "--allow"},
		{"wrong password", []string{"probe", "--xaddr", sim.Camera("c2").XAddr(), "--user", "op", "--password-file", wrongPW(t)}, 1, "not authorised"},
		{"credentials in xaddr", []string{"probe", "--xaddr", "http://op:" + pw + "@127.0.98.1/onvif/device_service"}, 2, "must not carry credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out+errs, tc.want) {
				t.Errorf("exit %d, output %q; want exit %d containing %q", code, out+errs, tc.code, tc.want)
			}
		})
	}
}

func wrongPW(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(p, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "velo ") {
		t.Errorf("version: %d %q", code, out)
	}
}
