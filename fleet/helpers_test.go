package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"velo/internal/testkit"
)

// startFleet runs a fleet against broker until the test ends and waits
// until it is subscribed.
func startFleet(t *testing.T, broker string, edit func(*Config)) (*Fleet, string) {
	t.Helper()
	cfg := Config{Broker: BrokerConfig{URL: broker, ClientID: fmt.Sprintf("fleet-%d", time.Now().UnixNano())}, Listen: "127.0.0.1:0"}
	if edit != nil {
		edit(&cfg)
	}
	f, err := New(cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fleet run: %v", err)
		}
	})
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addr, err := f.Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "the fleet subscribed", func() bool { return f.Self().Connected })
	return f, addr
}

// publisher publishes envelopes as a gateway would (the test's own,
// following docs/mqtt.md).
type publisher struct {
	t  *testing.T
	cl mqtt.Client
}

func newPublisher(t *testing.T, broker string) *publisher {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("pub-%d", time.Now().UnixNano()))
	cl := mqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	return &publisher{t: t, cl: cl}
}

// pub publishes body with the envelope of site/gw and seq on
// velo/site/gw/sub.
func (p *publisher) pub(site, gw, sub string, seq uint64, retained bool, body map[string]any) {
	p.t.Helper()
	m := map[string]any{"seq": seq, "time": time.Now().UTC(), "site": site, "gateway": gw}
	for k, v := range body {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	p.raw("velo/"+site+"/"+gw+"/"+sub, retained, b)
}

func (p *publisher) raw(topic string, retained bool, b []byte) {
	p.t.Helper()
	if tok := p.cl.Publish(topic, 1, retained, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		p.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}
