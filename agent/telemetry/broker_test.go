package telemetry

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"velo/internal/testkit"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
)

// Operators of the guarded broker in these tests: "ops" (no events) and
// "admin" (events too); their broker secrets.
var testOperators = map[string]struct {
	secret string
	events bool
}{"ops": {"ops-stream-pw", false}, "admin": {"admin-stream-pw", true}}

// guarded is an embedded broker with Velo's own client connected to it.
type guarded struct {
	br     *EmbeddedBroker
	tel    *Telemetry
	cmds   chan string // verbs Velo's client received
	losses atomic.Int32
	root   string
}

func startGuarded(t *testing.T, listen string, start bool) *guarded {
	t.Helper()
	br, err := NewEmbeddedBroker(BrokerOptions{Listen: listen, Site: "s", Gateway: "g", Log: zerolog.Nop(),
		Operator: func(name string) (BrokerOperator, bool) {
			op, ok := testOperators[name]
			return BrokerOperator{ReadEvents: op.events, CheckSecret: func(s []byte) bool {
				return subtle.ConstantTimeCompare(s, []byte(op.secret)) == 1
			}}, ok
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	if start {
		if err := br.Start(); err != nil {
			t.Fatal(err)
		}
	}
	g := &guarded{br: br, cmds: make(chan string, 16), root: TopicRoot("s", "g")}
	ob, err := OpenOutbox(filepath.Join(t.TempDir(), "outbox.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	g.tel, err = NewTelemetry(TelemetryConfig{Site: "s", Gateway: "g", Embedded: br, Outbox: ob, Log: zerolog.Nop(),
		BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		OnCommand: func(verb string, _ []byte) { g.cmds <- verb },
		OnConnection: func(up bool, _ string) {
			if !up {
				g.losses.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.tel.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; ob.Close() })
	return g
}

// dial connects a client to the broker (no reconnects).
func dial(url, clientID, user, pass string) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	cl := mqtt.NewClient(opts)
	tok := cl.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	return cl, tok.Error()
}

// spy subscribes to filters and records what arrives; codes are the
// SUBACK codes per filter (0x80: refused).
type spy struct {
	mu    sync.Mutex
	msgs  []mqtt.Message
	codes map[string]byte
}

func newSpy(t *testing.T, cl mqtt.Client, filters ...string) *spy {
	t.Helper()
	s := &spy{}
	fs := map[string]byte{}
	for _, f := range filters {
		fs[f] = 1
	}
	tok := cl.SubscribeMultiple(fs, func(_ mqtt.Client, m mqtt.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %v: %v", filters, tok.Error())
	}
	s.codes = tok.(*mqtt.SubscribeToken).Result()
	return s
}

func (s *spy) find(ok func(mqtt.Message) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if ok(m) {
			return true
		}
	}
	return false
}

func mustDial(t *testing.T, url, clientID, user, pass string) mqtt.Client {
	t.Helper()
	cl, err := dial(url, clientID, user, pass)
	if err != nil {
		t.Fatalf("%s as %q: %v", clientID, user, err)
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl
}

// The embedded broker is closed to everyone but Velo and the config's
// operators, and an operator can do no more than send commands and read
// what the role may see: no anonymous client, no wrong password, no
// takeover of Velo's client id (its LWT would go out), no reading of
// commands or `#`, no retained status or state with seq 2^64−1, no forged
// command reply.
func TestEmbeddedBrokerIsClosed(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, "127.0.0.1:0", true)
	testkit.WaitFor(t, 10*time.Second, "Velo's client connected", g.tel.Connected)
	url := g.br.URL()
	for _, c := range []struct{ what, id, user, pass string }{
		{"anonymous", "anon", "", ""},
		{"wrong password", "x1", "ops", "guess"},
		{"Velo's user without its secret", "x2", VeloUser, "guess"},
		{"Velo's client id", g.br.ClientID(), "ops", testOperators["ops"].secret},
		{"unknown operator", "x3", "mallory", "ops-stream-pw"},
	} {
		if cl, err := dial(url, c.id, c.user, c.pass); err == nil {
			cl.Disconnect(0)
			t.Errorf("%s: connected", c.what)
		}
	}

	admin := mustDial(t, url, "admin-1", "admin", testOperators["admin"].secret)
	watch := newSpy(t, admin, g.root+"status", g.root+"cameras/+/state", g.root+"cmd/+/+/reply", g.root+"events")
	ops := mustDial(t, url, "ops-1", "ops", testOperators["ops"].secret)
	nosy := newSpy(t, ops, "#", "velo/#", g.root+"cmd/#", g.root+"cmd/+/+", g.root+"events", g.root+"status")
	for f, code := range nosy.codes {
		if want := f == g.root+"status"; (code < 0x80) != want {
			t.Errorf("ops subscribing %s: SUBACK 0x%02x", f, code)
		}
	}
	const top = "18446744073709551615"
	forged := map[string]string{
		g.root + "status":                  `{"seq":` + top + `,"state":"online"}`,
		g.root + "cameras/c1/state":        `{"seq":` + top + `,"state":"streaming"}`,
		g.root + "cmd/state/refresh/reply": `{"request_id":"r1","status":"ok"}`,
		g.root + "events":                  `{"seq":` + top + `,"kind":"forged"}`,
	}
	for topic, payload := range forged {
		ops.Publish(topic, 0, true, payload).WaitTimeout(5 * time.Second)
	}
	ops.Publish(g.root+"cmd/state/refresh", 1, true, `{}`).WaitTimeout(5 * time.Second)
	select {
	case verb := <-g.cmds:
		if verb != "state/refresh" {
			t.Errorf("Velo received verb %q", verb)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an operator's command did not reach Velo")
	}
	if _, err := g.tel.Publish("cmd/state/refresh/reply", map[string]string{"request_id": "r1", "status": "refused"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "Velo's own reply", func() bool {
		return watch.find(func(m mqtt.Message) bool { return strings.Contains(string(m.Payload()), `"refused"`) })
	})
	late := newSpy(t, mustDial(t, url, "admin-2", "admin", testOperators["admin"].secret), g.root+"status", g.root+"cameras/+/state")
	time.Sleep(300 * time.Millisecond)
	for _, s := range []*spy{watch, nosy, late} {
		if s.find(func(m mqtt.Message) bool {
			b := string(m.Payload())
			return strings.Contains(b, top) || strings.Contains(b, `"ok"`) || strings.Contains(m.Topic(), "cmd/state/refresh") && !strings.HasSuffix(m.Topic(), "reply")
		}) {
			t.Error("a forged message or a command was delivered")
		}
	}
	if !late.find(func(m mqtt.Message) bool { return m.Topic() == g.root+"status" && m.Retained() }) {
		t.Error("Velo's retained status is not there")
	}
	if n := g.losses.Load(); n != 0 || !g.tel.Connected() {
		t.Errorf("Velo's client lost its session %d times", n)
	}
	if g.br.Refused() == 0 {
		t.Error("no refusal counted")
	}
	t.Logf("refusals counted: %d", g.br.Refused())
}

func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// mqttString is an MQTT UTF-8 string (length-prefixed).
func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// mqttLength is an MQTT remaining length.
func mqttLength(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// publishHuge logs in as an operator over raw TCP and sends one PUBLISH
// of size bytes on topic, streamed from a 1 MiB buffer (the test itself
// does not hold it).
func publishHuge(t *testing.T, addr, user, pass, topic string, size int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := append(mqttString("MQTT"), 4, 0xC2, 0, 60)
	body = append(append(append(body, mqttString("huge-1")...), mqttString(user)...), mqttString(pass)...)
	c.Write(append(append([]byte{0x10}, mqttLength(len(body))...), body...))
	ack := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).Read(ack); err != nil || ack[3] != 0 {
		t.Fatalf("CONNACK %x %v", ack, err)
	}
	tn := mqttString(topic)
	c.Write(append(append([]byte{0x30}, mqttLength(len(tn)+size)...), tn...))
	chunk := make([]byte, 1<<20)
	c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			return // the broker hung up: what it should do
		}
	}
}

// A 100 MB publish, to the embedded broker by an operator and to Velo's
// client by a hostile broker, does not grow the process's memory: both
// refuse the packet from its header.
func TestHugePublishDoesNotGrowMemory(t *testing.T) {
	g := startGuarded(t, "127.0.0.1:0", true)
	testkit.WaitFor(t, 10*time.Second, "Velo's client connected", g.tel.Connected)
	runtime.GC()
	before := rssBytes(t)
	publishHuge(t, g.br.Addr(), "ops", testOperators["ops"].secret, g.root+"cmd/state/refresh", 100<<20)
	time.Sleep(time.Second)
	runtime.GC()
	after := rssBytes(t)
	t.Logf("RSS around a 100 MB publish to the embedded broker: %d MB → %d MB", before>>20, after>>20)
	if after-before > 32<<20 {
		t.Errorf("RSS grew by %d MB", (after-before)>>20)
	}
	ops := mustDial(t, g.br.URL(), "ops-2", "ops", testOperators["ops"].secret)
	ops.Publish(g.root+"cmd/state/refresh", 1, false, `{}`).WaitTimeout(5 * time.Second)
	select {
	case <-g.cmds:
	case <-time.After(10 * time.Second):
		t.Fatal("no command reaches Velo after the huge publish")
	}

	// Velo's client against a broker that sends it a 100 MB PUBLISH.
	hostile, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostile.Close()
	var hungUp atomic.Int32 // Velo's client closed the connection mid-packet
	go func() {
		for {
			c, err := hostile.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 4096)) // CONNECT
				c.Write([]byte{0x20, 2, 0, 0})
				tn := mqttString("velo/s/h/cmd/x")
				c.Write(append(append([]byte{0x30}, mqttLength(len(tn)+100<<20)...), tn...))
				chunk := make([]byte, 1<<20)
				for range 100 {
					if _, err := c.Write(chunk); err != nil {
						hungUp.Add(1)
						return
					}
				}
			}()
		}
	}()
	ob, err := OpenOutbox(filepath.Join(t.TempDir(), "h.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	tel, err := NewTelemetry(TelemetryConfig{Site: "s", Gateway: "h", URL: "tcp://" + hostile.Addr().String(), Outbox: ob, Log: zerolog.Nop(),
		OnCommand: func(string, []byte) {}, BackoffMin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tel.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	runtime.GC()
	before = rssBytes(t)
	testkit.WaitFor(t, 20*time.Second, "Velo's client dropping the hostile broker", func() bool { return hungUp.Load() > 0 })
	runtime.GC()
	after = rssBytes(t)
	t.Logf("RSS around a 100 MB publish from a hostile broker to Velo's client: %d MB → %d MB", before>>20, after>>20)
	if after-before > 32<<20 {
		t.Errorf("RSS grew by %d MB", (after-before)>>20)
	}
}

// A local process holding the embedded broker's port delays the broker,
// it does not stop it: velo retries with backoff, never connects its
// client (with its secret) to the squatter, and comes up once the port is
// free.
func TestEmbeddedBrokerPortSquatted(t *testing.T) {
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
	g := startGuarded(t, squat.Addr().String(), false)
	if err := g.br.Start(); err == nil {
		t.Fatal("Start on a squatted port succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.br.StartRetrying(ctx)
	time.Sleep(1500 * time.Millisecond)
	if g.tel.Connected() || accepted.Load() != 0 {
		t.Fatalf("Velo's client went to the squatter (%d connections)", accepted.Load())
	}
	squat.Close()
	testkit.WaitFor(t, 20*time.Second, "the broker up and Velo connected once the port is free", g.tel.Connected)
}

// Idle sockets that never send CONNECT cannot pile up: past
// maxConnections a new one is closed at once, and each is closed after
// connectTimeout; Velo's own session is not disturbed.
func TestEmbeddedBrokerIdleSockets(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, "127.0.0.1:0", true)
	testkit.WaitFor(t, 10*time.Second, "Velo's client connected", g.tel.Connected)
	closedBy := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	over := 0
	for range maxConnections + 10 {
		c, err := net.Dial("tcp", g.br.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns[len(conns)-10:] {
		if closedBy(c, 2*time.Second) {
			over++
		}
	}
	if over < 9 { // Velo's own connection counts too
		t.Errorf("%d of the 10 sockets over the limit were closed at once", over)
	}
	time.Sleep(connectTimeout)
	if !closedBy(conns[0], 2*time.Second) {
		t.Error("an idle socket is still open after the connect timeout")
	}
	if n := g.losses.Load(); n != 0 || !g.tel.Connected() {
		t.Errorf("Velo's client lost its session %d times", n)
	}
	ops := mustDial(t, g.br.URL(), "ops-after", "ops", testOperators["ops"].secret)
	ops.Disconnect(0)
}
