package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/internal/testkit"
)

// velo fleet over mutual TLS, its config loaded from a file as velo fleet
// run loads it; and a refused password ends Run with the reason, without
// the password.
func TestFleetTLSAndLogin(t *testing.T) {
	pki := testkit.NewPKI(t, "fleet-ca")
	m := testkit.StartMosquitto(t, testkit.MosquittoOptions{TLS: pki, RequireCert: true})
	cert := pki.Issue(t, "fleet", false)
	dir := t.TempDir()
	p := filepath.Join(dir, "fleet.yaml")
	yaml := fmt.Sprintf("broker: {url: %s, ca_file: %s, cert_file: %s, key_file: %s}\nlisten: 127.0.0.1:0\n",
		m.URL(true), pki.CAFile, cert.CertFile, cert.KeyFile)
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := startFleet(t, m.URL(true), func(c *Config) { *c = *cfg })
	if !f.Self().Connected {
		t.Fatal("not connected over mutual TLS")
	}

	const secret = "Wrong-Fleet-Pass-1"
	pw := testkit.StartMosquitto(t, testkit.MosquittoOptions{Users: map[string]string{"fleet": "right"}})
	bad := Config{Broker: BrokerConfig{URL: pw.URL(false), Username: "fleet", password: secret}, Listen: "127.0.0.1:0"}
	fl, err := New(bad, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = fl.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), `refused the login of "fleet"`) || strings.Contains(err.Error(), secret) {
		t.Errorf("a refused login: %v", err)
	}
}

// With state_file, the audit pins outlive the fleet: a key change while
// it was down is still an incident after its restart.
func TestAuditPinsSurviveARestart(t *testing.T) {
	m := testkit.StartMosquitto(t, testkit.MosquittoOptions{})
	p := newPublisher(t, m.URL(false))
	stateFile := filepath.Join(t.TempDir(), "fleet-state.json")
	run := func(name string, publish func()) *Fleet {
		f, err := New(Config{Broker: BrokerConfig{URL: m.URL(false), ClientID: name}, Listen: "127.0.0.1:0", StateFile: stateFile}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		testkit.WaitFor(t, 20*time.Second, name+" subscribed", func() bool { return f.Self().Connected })
		publish()
		testkit.WaitFor(t, 20*time.Second, name+" got the head", func() bool { return f.State().Counts().Events == 1 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return f
	}
	run("fleet-a", func() {
		p.pub("s1", "gw1", "events", 5, false, map[string]any{"kind": "audit_head", "audit_seq": 40, "audit_hash": hash1, "audit_key": keyA})
	})
	if st, err := os.Stat(stateFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v", err)
	}
	f := run("fleet-b", func() {
		p.pub("s1", "gw1", "events", 6, false, map[string]any{"kind": "audit_head", "audit_seq": 41, "audit_hash": hash2, "audit_key": keyB})
	})
	reps := f.State().Gateways()
	if len(reps) != 1 || reps[0].Incidents != 1 {
		t.Errorf("after a restart, a new key: %+v, want 1 incident", reps)
	}
	if err := os.WriteFile(stateFile, []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad, _ := New(Config{Broker: BrokerConfig{URL: m.URL(false)}, Listen: "127.0.0.1:0", StateFile: stateFile}, zerolog.Nop())
	if err := bad.Run(context.Background()); err == nil || !strings.Contains(err.Error(), stateFile) {
		t.Errorf("a corrupt state file: %v, want refused naming it", err)
	}
}
