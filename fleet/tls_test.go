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
