package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/masking/relay"
)

// relayForTest is the running agent's relay (nil outside Run).
func (a *Agent) relayForTest() *relay.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.run == nil {
		return nil
	}
	return a.run.rel
}

// runSite writes files (name → content, mode 0600) into a new folder,
// loads its site.yaml and runs the agent on it for at most within; the
// agent stops when the test ends. ctx is the run's: it ends with it.
func runSite(t *testing.T, files map[string]string, within time.Duration) (*Agent, context.Context) {
	t.Helper()
	dir := t.TempDir()
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.Nop(), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), within)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, ctx
}
