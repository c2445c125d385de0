package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/fleet"
)

// velo fleet status reads the running fleet's API: a table with since
// when, filters, JSON, and a gateway's text escaped.
func TestFleetStatus(t *testing.T) {
	f, err := fleet.New(fleet.Config{Broker: fleet.BrokerConfig{URL: "tcp://127.0.0.1:1"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.Handler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	now := time.Now()
	feed := func(topic, payload string) { f.State().Handle(topic, []byte(payload), now) }
	feed("velo/rome/gw1/status", `{"seq":1,"state":"online"}`)
	feed("velo/rome/gw1/cameras/door/state", `{"seq":2,"status":"blank","since":"2026-12-01T08:00:00Z"}`)
	feed("velo/rome/gw1/cameras/hall/state", `{"seq":3,"status":"offline","error":"unreachable\u001b[31m"}`)
	feed("velo/milan/gw2/status", `{"seq":4,"state":"offline","reason":"connection lost"}`)
	addr := ln.Addr().String()

	out, errs, code := runCLI(t, "fleet", "status", "--addr", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SITE") || !strings.Contains(lines[1], "door") ||
		!strings.Contains(lines[1], "2026-12-01T08:00:00Z") {
		t.Errorf("table, oldest first:\n%s", out)
	}
	if strings.Contains(out, "\x1b") || !strings.Contains(out, `unreachable\u001b[31m`) {
		t.Errorf("a gateway's control characters reach the terminal:\n%q", out)
	}
	out, _, code = runCLI(t, "fleet", "status", "--addr", addr, "--site", "milan", "--json")
	var rows []fleet.Finding
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0].Gateway != "gw2" || rows[0].State != "offline" {
		t.Errorf("--site milan --json: exit %d, %s", code, out)
	}
	out, _, _ = runCLI(t, "fleet", "status", "--addr", addr, "--state", "blank")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "door") {
		t.Errorf("--state blank:\n%s", out)
	}
	if _, errs, code := runCLI(t, "fleet", "status", "--addr", addr, "--state", "sad"); code != 2 || !strings.Contains(errs, "offline, blank") {
		t.Errorf("bad --state: exit %d, %s", code, errs)
	}
	_ = ln.Close()
	_ = srv.Close()
	if _, errs, code := runCLI(t, "fleet", "status", "--addr", addr, "--timeout", "2s"); code != 1 || !strings.Contains(errs, "is 'velo fleet run' listening on "+addr) {
		t.Errorf("fleet not running: exit %d, %s", code, errs)
	}
}

// A bad fleet config stops velo fleet run with the file and the field.
func TestFleetRunRefusesABadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(p, []byte("broker: {url: 'tcp://ops:"+pw+"@127.0.0.1:1883'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCLI(t, "fleet", "run", "--config", p)
	if code != 1 || !strings.Contains(errs, p) || !strings.Contains(errs, "broker.url: credentials in the URL are refused") {
		t.Errorf("exit %d: %s", code, errs)
	}
}
