package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
)

const admissionConfig = `site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
state_dir: state
broker: %s
outputs: {rtsp_listen: "127.0.0.1:%d"}
operators:
  - {name: admin, password_file: admin.pw, roles: [admin], combined_roles_reason: site owner}
  - {name: ops, password_file: ops.pw, roles: [live-viewer]}
`

// startAdmissionAgent starts an agent with no camera on broker (a YAML flow
// map) and returns it with its log.
func startAdmissionAgent(t *testing.T, broker string, files map[string]string) (*Agent, func() string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if op, ok := strings.CutSuffix(name, ".pw"); ok && op != "broker" && !access.IsHashed(text) {
			// operators' files hold credential lines (generation 1): a
			// plaintext password verifies no command
			text = access.HashCredential("t", op, text, 1, time.Now().Add(time.Hour))
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(admissionConfig, broker, testkit.FreePort(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	w := &syncWriter{b: &logs}
	a := New(cfg, zerolog.New(w), Options{Version: "test"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	logged := func() string { w.mu.Lock(); defer w.mu.Unlock(); return logs.String() }
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Log(logged())
		}
	})
	return a, logged
}

// admissionAgent starts an agent as startAdmissionAgent does and waits
// until it is connected to its broker.
func admissionAgent(t *testing.T, broker string, files map[string]string) (*Agent, func() string) {
	t.Helper()
	a, logged := startAdmissionAgent(t, broker, files)
	testkit.WaitFor(t, 20*time.Second, "Velo connected to its broker", func() bool { return strings.Contains(logged(), "mqtt: connected") })
	return a, logged
}

func mqttLogin(t *testing.T, url, id, user, pass string) mqtt.Client {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).SetAutoReconnect(false))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s logs in to %s: %v", user, url, tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl
}

// flood sends 1,000 unsigned junk commands through junk, with 5 genuine
// signed ones through genuine among them, and checks that every genuine
// one executes and is answered (the reply names the command's SHA-256)
// and that the junk gets no reply and no audit entry of its own.
func flood(t *testing.T, a *Agent, junk, genuine mqtt.Client, adminPassword string) {
	root := "velo/t/gw/"
	var mu sync.Mutex
	replies := map[string]string{} // request id → payload
	if tok := genuine.Subscribe(root+"cmd/+/+/reply", 1, func(_ mqtt.Client, m mqtt.Message) {
		var r struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(m.Payload(), &r)
		mu.Lock()
		replies[r.RequestID] = string(m.Payload())
		mu.Unlock()
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	now := time.Now()
	const junks, genuines = 1000, 5
	sums := map[string]string{}
	for i := range junks {
		c := fmt.Sprintf(`{"request_id":"junk-%d","operator":"admin","gateway":"gw","issued_at":%q,"expires_at":%q,"mac":"%064x"}`,
			i, now.Format(time.RFC3339Nano), now.Add(time.Minute).Format(time.RFC3339Nano), i)
		junk.Publish(root+"cmd/state/refresh", 0, false, c)
		if i%(junks/genuines) == junks/genuines/2 {
			id := fmt.Sprintf("genuine-%d", i)
			p := signedCommand(adminPassword, "t", "gw", "state/refresh", "admin", id, nil, now, now.Add(time.Minute))
			sum := sha256.Sum256(p)
			sums[id] = hex.EncodeToString(sum[:])
			genuine.Publish(root+"cmd/state/refresh", 1, false, p)
		}
	}
	testkit.WaitFor(t, 60*time.Second, "replies to the genuine commands", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for id := range sums {
			if replies[id] == "" {
				return false
			}
		}
		return true
	})
	executed, audited := 0, 0
	for _, ev := range a.Events() {
		switch ev.Kind {
		case event.CommandExecuted:
			executed++
		case event.CommandRefused:
			audited++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, sum := range sums {
		if r := replies[id]; !strings.Contains(r, `"status":"ok"`) || !strings.Contains(r, `"command_sha256":"`+sum+`"`) {
			t.Errorf("reply to %s: %s", id, r)
		}
	}
	junkReplies := len(replies) - len(sums)
	t.Logf("genuine commands executed: %d of %d amid %d junk ones; junk replies %d, junk audited %d", executed, genuines, junks, junkReplies, audited)
	if executed != genuines || junkReplies != 0 || audited != 0 {
		t.Errorf("executed %d of %d genuine; %d junk replies, %d junk refusals audited", executed, genuines, junkReplies, audited)
	}
}

// 1,000 unsigned junk commands with 5 genuine signed ones among them:
// every genuine one executes. Through the embedded broker the junk
// sender (an operator's login) is held to its publish rate; through a
// central Mosquitto that lets everything through, the junk reaches Velo
// and is refused before the command queue, counted in one log line per
// burst.
func TestCommandAdmissionUnderJunk(t *testing.T) {
	pw := map[string]string{"admin.pw": "admin-secret-7", "ops.pw": "ops-secret-8", "broker.pw": "broker-secret-9"}
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		listen := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
		a, logged := admissionAgent(t, fmt.Sprintf("{embedded_listen: %q}", listen), pw)
		url := "tcp://" + listen
		junk := mqttLogin(t, url, "junk", "ops", access.StreamPassword("t", "ops", pw["ops.pw"], 1))
		genuine := mqttLogin(t, url, "genuine", "admin", access.StreamPassword("t", "admin", pw["admin.pw"], 1))
		flood(t, a, junk, genuine, pw["admin.pw"])
		testkit.WaitFor(t, 15*time.Second, "the broker's burst log line", func() bool { return strings.Contains(logged(), "operator over its publish rate") })
	})
	t.Run("central", func(t *testing.T) {
		t.Parallel()
		m := testkit.StartMosquitto(t, testkit.MosquittoOptions{Users: map[string]string{"gw": pw["broker.pw"], "central": "central-pw"},
			ACL: "pattern readwrite velo/+/%u/#\nuser central\ntopic readwrite velo/#\n"})
		a, logged := admissionAgent(t, fmt.Sprintf("{url: %q, username: gw, password_file: broker.pw}", m.URL(false)), pw)
		junk := mqttLogin(t, m.URL(false), "junk", "central", "central-pw")
		genuine := mqttLogin(t, m.URL(false), "genuine", "central", "central-pw")
		flood(t, a, junk, genuine, pw["admin.pw"])
		const line = "commands refused before the queue"
		testkit.WaitFor(t, 15*time.Second, "the burst's log line", func() bool { return strings.Contains(logged(), line) })
		if n := strings.Count(logged(), line); n > 2 {
			t.Errorf("%d log lines for one burst", n)
		}
	})
}

// A local process holding the embedded broker's port when velo starts
// does not stop it: Run keeps going, says why telemetry waits, retries,
// and connects once the port is free, never to the squatter.
func TestRunSurvivesASquattedBrokerPort(t *testing.T) {
	t.Parallel()
	squat, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	go func() {
		for {
			c, err := squat.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, logged := startAdmissionAgent(t, fmt.Sprintf("{embedded_listen: %q}", squat.Addr().String()), map[string]string{"admin.pw": "a-secret-1", "ops.pw": "o-secret-2"})
	// The port is freed only once velo has said why telemetry waits.
	testkit.WaitFor(t, 20*time.Second, "velo saying why telemetry waits", func() bool { return strings.Contains(logged(), "embedded broker: cannot listen") })
	squat.Close()
	testkit.WaitFor(t, 40*time.Second, "Velo connected to its broker", func() bool { return strings.Contains(logged(), "mqtt: connected") })
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections to the squatter", n)
	}
}
