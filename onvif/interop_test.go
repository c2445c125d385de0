package onvif_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"velo/onvif"
	"velo/onvif/camsim"
)

// The tests in this file need multicast, so they run inside a private
// network namespace: the outer test re-executes the test binary under
// `unshare -n`; the inner one brings up lo, routes 239.0.0.0/8 to it, and
// talks only to 127.0.0.x inside that namespace.

const netnsEnv = "VELO_TEST_IN_NETNS"

func TestInteropNetns(t *testing.T) {
	if os.Getenv(netnsEnv) == "1" {
		interopInside(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (unshare -n); `make test` as root runs it")
	}
	for _, tool := range []string{"unshare", "ip", "onvif-util", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run `make deps`", tool)
		}
	}
	if _, err := os.Stat(peerModules(t)); err != nil {
		t.Fatalf("npm onvif@0.8.3 not installed (%v): run `make peers`", err)
	}
	args := []string{"-n", os.Args[0], "-test.run=^TestInteropNetns$", "-test.v", "-test.count=1", "-test.timeout=5m"}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside the namespace:\n%s", out)
	if err != nil {
		t.Fatalf("namespace run failed: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestInteropNetns")) || bytes.Contains(out, []byte("--- SKIP")) {
		t.Fatal("namespace run did not pass every subtest")
	}
}

func peerModules(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "build", "npm", "node_modules", "onvif")
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func interopInside(t *testing.T) {
	run(t, "ip", "link", "set", "lo", "up")
	run(t, "ip", "route", "add", "239.0.0.0/8", "dev", "lo")

	cams := []camsim.CameraConfig{
		simCam("ns-ptz", func(c *camsim.CameraConfig) { c.Address, c.HTTPPort, c.Auth = "127.0.0.2", 80, camsim.AuthEither }),
		simCam("ns-badge", func(c *camsim.CameraConfig) {
			c.Address, c.HTTPPort, c.Scene, c.PTZ, c.Quirk.VendorNamespaces = "127.0.0.3", 80, "badge", nil, true
		}),
		simCam("ns-street", func(c *camsim.CameraConfig) {
			c.Address, c.HTTPPort, c.Scene, c.PTZ, c.ClockSkew = "127.0.0.4", 80, "street", nil, camsim.Duration(time.Hour)
		}),
	}
	for i := range cams { // small real video, so GetStreamUri has a stream behind it
		cams[i].NoVideo, cams[i].Width, cams[i].Height, cams[i].FPS = false, 320, 180, 5
	}
	tr := true
	sim := camsim.StartConfigForTest(t, camsim.Config{Discovery: camsim.DiscoveryConfig{Multicast: true, Unicast: &tr}, Cameras: cams})
	wantEP := map[string]string{}
	for _, c := range sim.Cameras() {
		wantEP[c.Config().Endpoint] = c.Config().Address
	}

	t.Run("velo multicast and unicast discovery", func(t *testing.T) {
		devs, err := onvif.Discover(ctxT(t), onvif.DiscoverOptions{Window: 1500 * time.Millisecond, Unicast: []string{"127.0.0.0/29"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 3 {
			t.Fatalf("found %d devices (deduped by endpoint), want 3: %+v", len(devs), devs)
		}
		for _, d := range devs {
			if wantEP[d.Endpoint] != d.From || len(d.XAddrs) != 1 || !strings.Contains(d.XAddrs[0], d.From) {
				t.Errorf("device %+v", d)
			}
		}
	})

	t.Run("velo discovery on a named interface", func(t *testing.T) {
		devs, err := onvif.Discover(ctxT(t), onvif.DiscoverOptions{Interfaces: []string{"lo"}, Window: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 3 {
			t.Fatalf("found %d on lo, want 3", len(devs))
		}
	})

	t.Run("credentials only to allow-listed hosts", func(t *testing.T) {
		// A spoofed responder advertises a device at 127.0.0.9 that asks for
		// credentials; it is not on the allow-list and must get none.
		var mu sync.Mutex
		var seen []string
		ln, err := net.Listen("tcp4", "127.0.0.9:8081")
		if err != nil {
			t.Fatal(err)
		}
		spoofHTTP := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen = append(seen, string(b)+r.Header.Get("Authorization"))
			mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Digest realm="x", nonce="n", qop="auth"`)
			w.WriteHeader(401)
		})}
		go spoofHTTP.Serve(ln)
		defer spoofHTTP.Close()
		stop := spoofResponder(t, "127.0.0.9", "http://127.0.0.9:8081/onvif/device_service")
		defer stop()

		devs, err := onvif.Discover(ctxT(t), onvif.DiscoverOptions{Window: 1500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		allow, _ := onvif.ParseAllowList([]string{"127.0.0.2/31", "127.0.0.4"})
		creds := &onvif.Credentials{Username: testUser, Password: testPass}
		var spoofed, identified int
		for _, d := range devs {
			id := onvif.Identify(ctxT(t), d, creds, allow)
			switch d.From {
			case "127.0.0.9":
				spoofed++
				if !id.NeedsAuth || !id.CredentialsWithheld || id.Info != nil {
					t.Errorf("spoofed device identity %+v", id)
				}
			default:
				if id.Info == nil || !id.NeedsAuth {
					t.Errorf("camera %s: %+v", d.From, id)
				} else {
					identified++
				}
			}
		}
		if spoofed != 1 || identified != 3 {
			t.Fatalf("spoofed %d, identified %d", spoofed, identified)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			t.Fatal("the spoofed device was never contacted: test proves nothing")
		}
		for _, s := range seen {
			if strings.Contains(s, "UsernameToken") || strings.Contains(s, testUser) || strings.Contains(s, "response=") {
				t.Errorf("credentials sent to a host not on the allow-list: %q", s)
			}
		}
	})

	t.Run("hello and bye", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxT(t))
		events := make(chan onvif.AnnouncementEvent, 16)
		done := make(chan error, 1)
		ready := make(chan struct{})
		go func() {
			done <- onvif.Listen(ctx, onvif.ListenOptions{Ready: func() { close(ready) }}, func(e onvif.AnnouncementEvent) { events <- e })
		}()
		select { // the listener must have joined before the Hello is sent
		case <-ready:
		case err := <-done:
			t.Fatalf("Listen: %v", err)
		}
		extra := simCam("ns-late", func(c *camsim.CameraConfig) { c.Address, c.PTZ = "127.0.0.5", nil })
		late := camsim.StartConfigForTest(t, camsim.Config{Discovery: camsim.DiscoveryConfig{Multicast: true, Unicast: &tr}, Cameras: []camsim.CameraConfig{extra}})
		ep := late.Camera("ns-late").Config().Endpoint
		waitEvent(t, events, onvif.Hello, ep)
		late.Close()
		waitEvent(t, events, onvif.Bye, ep)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen: %v", err)
		}
	})

	t.Run("onvif-util discovery", func(t *testing.T) {
		out := runPeer(t, "", "onvif-util", "-a")
		for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
			if !strings.Contains(out, ip) {
				t.Errorf("onvif-util -a did not list %s:\n%s", ip, out)
			}
		}
		if !strings.Contains(out, "Found 3 cameras") {
			t.Errorf("onvif-util -a:\n%s", out)
		}
	})

	t.Run("onvif-util session", func(t *testing.T) {
		for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
			out := runPeer(t, "get time\nget profiles\nget rtsp\nquit\n", "onvif-util", "-u", testUser, "-p", testPass, ip)
			for _, want := range []string{"successfully connected", "Token 0: main", "Token 1: sub", "rtsp://" + ip} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: output lacks %q:\n%s", ip, want, out)
				}
			}
			if strings.Contains(out, "ERROR") {
				t.Errorf("%s: onvif-util reported an error:\n%s", ip, out)
			}
		}
	})

	t.Run("npm onvif discovery", func(t *testing.T) {
		var res struct {
			Cameras []struct {
				Endpoint string   `json:"endpoint"`
				XAddrs   []string `json:"xaddrs"`
			} `json:"cameras"`
		}
		nodePeer(t, &res, "discover", "1500")
		var got []string
		for _, c := range res.Cameras {
			got = append(got, c.Endpoint)
			if ip := wantEP[c.Endpoint]; ip == "" || !strings.Contains(c.XAddrs[0], ip) {
				t.Errorf("camera %+v", c)
			}
		}
		if len(got) != 3 {
			t.Errorf("npm onvif found %v", got)
		}
	})

	t.Run("npm onvif presets and status", func(t *testing.T) {
		cam := sim.Camera("ns-ptz")
		c := newClient(t, cam)
		if err := c.GotoPreset(ctxT(t), "main", "2"); err != nil {
			t.Fatal(err)
		}
		waitPosition(ctxT(t), t, c, 0.5, 0.25, 0.5)
		var res struct {
			PresetTokens []string `json:"presetTokens"`
			PresetNames  []string `json:"presetNames"`
			Status       struct {
				Position struct{ X, Y, Zoom float64 } `json:"position"`
			} `json:"status"`
			HasSpaces bool     `json:"hasSpaces"`
			Profiles  []string `json:"profiles"`
		}
		nodePeer(t, &res, "cam", "127.0.0.2", "80", testUser, testPass)
		sort.Strings(res.PresetTokens)
		if strings.Join(res.PresetTokens, ",") != "1,2,3" {
			t.Errorf("preset tokens %v", res.PresetTokens)
		}
		// npm onvif keys its name map by name: the duplicate "door" collapses
		// there; its token map keeps all three (Velo keys presets by token:
		// docs/onvif.md).
		if len(res.PresetNames) != 2 {
			t.Errorf("preset names %v", res.PresetNames)
		}
		if p := res.Status.Position; p.X != 0.5 || p.Y != 0.25 || p.Zoom != 0.5 {
			t.Errorf("status position %+v", p)
		}
		if !res.HasSpaces || strings.Join(res.Profiles, ",") != "main,sub" {
			t.Errorf("spaces %t profiles %v", res.HasSpaces, res.Profiles)
		}
	})
}

func waitEvent(t *testing.T, ch <-chan onvif.AnnouncementEvent, kind onvif.AnnouncementKind, ep string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Kind == kind && e.Device.Endpoint == ep {
				return
			}
		case <-timeout:
			t.Fatalf("no %s from %s", kind, ep)
		}
	}
}

func runPeer(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func nodePeer(t *testing.T, out any, args ...string) {
	t.Helper()
	script, _ := filepath.Abs("testdata/peers/node-peer.js")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Dir(peerModules(t)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	if err != nil {
		t.Fatalf("node peer %v: %v\n%s%s", args, err, data, stderr.String())
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("node peer output %q: %v", data, err)
	}
}

// spoofResponder answers multicast probes with a ProbeMatch for a fake
// device at xaddr, sent from ip.
func spoofResponder(t *testing.T, ip, xaddr string) func() {
	t.Helper()
	gaddr, _ := net.ResolveUDPAddr("udp4", onvif.DiscoveryGroup)
	lc := net.ListenConfig{Control: onvif.ReuseAddrControl}
	pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", gaddr.Port))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := net.ListenMulticastUDP("udp4", nil, gaddr)
	if err != nil {
		t.Fatal(err)
	}
	pc.Close() // only needed to prove the port is shareable
	out, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := mc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if !bytes.Contains(buf[:n], []byte("Probe")) || bytes.Contains(buf[:n], []byte("ProbeMatches")) {
				continue
			}
			var p struct {
				Header struct {
					MessageID string `xml:"MessageID"`
				} `xml:"Header"`
			}
			_ = xmlUnmarshal(buf[:n], &p)
			reply := `<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">` +
				`<s:Header><a:RelatesTo>` + p.Header.MessageID + `</a:RelatesTo></s:Header><s:Body><d:ProbeMatches><d:ProbeMatch>` +
				`<a:EndpointReference><a:Address>urn:uuid:00000000-0000-0000-0000-00000000spoof</a:Address></a:EndpointReference>` +
				`<d:Types>dn:NetworkVideoTransmitter</d:Types><d:XAddrs>` + xaddr + `</d:XAddrs></d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>`
			_, _ = out.WriteToUDP([]byte(reply), from)
		}
	}()
	return func() { mc.Close(); out.Close() }
}

func xmlUnmarshal(data []byte, v any) error { return xml.Unmarshal(data, v) }
