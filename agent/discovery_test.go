package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/agent/event"
	"velo/onvif/camsim"
)

// Discovery in velo run: a device that answers WS-Discovery but is not in
// the config is reported once (camera_unconfigured) and gets no request
// at all (no credentials, no stream); a configured one is recognised, even
// when it advertises a wrong XAddr host.
func TestDiscoveryReportsUnconfigured(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	on := true
	sim, err := camsim.New(camsim.Config{Discovery: camsim.DiscoveryConfig{Unicast: &on, UnicastPort: port}, Cameras: []camsim.CameraConfig{
		// The known camera advertises a wrong XAddr host (cheap-OEM quirk,
		// firmware-notes/generic-oem.md): still recognised by the reply's
		// source address.
		{ID: "known", Address: "127.0.99.1", HTTPPort: 18099, NoVideo: true, Username: "u", Password: "known-pw", Serial: "K1",
			Quirk: camsim.QuirkConfig{WrongXAddrHost: "127.0.0.254:18099"}},
		{ID: "stranger", Address: "127.0.99.2", NoVideo: true, Username: "u", Password: "stranger-pw", Serial: "S9"},
	}}, camsim.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
discovery: {enabled: true, unicast: [127.0.99.0/30], unicast_port: %d, window: 1s, interval: 30s}
cameras:
  - id: known
    purpose: p
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: K1}
    xaddr: %s
`, port, sim.Camera("known").XAddr())
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.Nop(), Options{})
	reported := map[string]bool{}
	for round := 0; round < 2; round++ { // reported once, not every round
		if err := a.discoverOnce(ctx, reported); err != nil {
			t.Fatal(err)
		}
	}
	var got []event.Event
	for _, ev := range a.Events() {
		if ev.Kind == event.CameraUnconfigured {
			got = append(got, ev)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0].Detail, "127.0.99.2") {
		t.Fatalf("unconfigured events: %+v", got)
	}
	if n := sim.Camera("stranger").Requests(); n != 0 {
		t.Errorf("the unconfigured device got %d ONVIF requests", n)
	}
}
