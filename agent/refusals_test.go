package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/rs/zerolog"

	"velo/agent/access"
	"velo/agent/attempts"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"
)

// auditedRun is a real agent (relay, audit log, embedded broker) with
// one camera that is never reachable and an operator "ops" allowed to
// view it live, and a subscriber to its events over MQTT.
type auditedRun struct {
	a        *Agent
	logs     *eventLog
	events   *testkit.Collector // velo/t/gw/events
	rtspPort int
	auditDir string
}

// auditedAgent starts an auditedRun with extra YAML appended to the site
// config.
func auditedAgent(t *testing.T, extra string) *auditedRun {
	t.Helper()
	r := &auditedRun{rtspPort: testkit.FreePort(t), logs: &eventLog{}}
	dead := testkit.FreePortOn(t, "127.0.93.1") // nothing listens: the camera stays offline
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
operators:
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [cam]}
  - {name: ctl, password_file: ctl.cred, roles: [admin], cameras: [cam], combined_roles_reason: reads the events}
cameras:
  - id: cam
    purpose: p
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: S}
    xaddr: http://127.0.93.1:%d/onvif/device_service
    username: u
    password_file: cam.pw
%s`, r.rtspPort, dead, extra)
	dir := t.TempDir()
	testkit.SecretFile(t, dir, "ops.pw", "ops-pw\n")
	testkit.SecretFile(t, dir, "cam.pw", "cam-pw\n")
	testkit.SecretFile(t, dir, "ctl.cred", access.HashCredential("t", "ctl", "ctl-pw", 1, time.Now().Add(time.Hour))+"\n")
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r.auditDir = config.AuditDir(cfg)
	// A burst ends after half a second without an attempt (10 s in
	// service), so that the test need not wait for its summary.
	// The relay's failure pause (2 s in service) would stretch a hammering
	// of 1,000 logins from one source over minutes; the pause has tests
	// of its own (masking/relay).
	r.a = New(cfg, zerolog.New(r.logs), Options{Attempts: attempts.Options{Quiet: 500 * time.Millisecond}, RelayMaxPause: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-r.a.Ready():
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready")
	}
	// The embedded broker lets only an admin read the events.
	r.events = testkit.NewCollector(t, testkit.CollectorOptions{URL: r.logs.brokerURL(), Username: "ctl",
		Password: access.StreamPassword("t", "ctl", "ctl-pw", 1)}, "velo/t/gw/events")
	return r
}

// eventLog is the agent's log, counted by event kind (the event funnel
// logs each event once), with the embedded broker's URL.
type eventLog struct {
	mu     sync.Mutex
	kinds  map[string]int
	broker string
}

func (l *eventLog) Write(p []byte) (int, error) {
	var line struct {
		Event  string `json:"event"`
		Broker string `json:"broker"`
	}
	_ = json.Unmarshal(p, &line)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil {
		l.kinds = map[string]int{}
	}
	l.kinds[line.Event]++
	if line.Broker != "" {
		l.broker = line.Broker
	}
	return len(p), nil
}

func (l *eventLog) count(k event.Kind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.kinds[string(k)]
}

func (l *eventLog) brokerURL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.broker
}

// mark is where a phase starts: what the audit log, the agent's log and
// MQTT already hold of one kind.
type mark struct {
	kind   event.Kind
	audit  auditOf
	logged int
	mqtt   int
}

func (r *auditedRun) mark(t *testing.T, kind event.Kind) mark {
	return mark{kind, readAudit(t, r.auditDir, string(kind)), r.logs.count(kind), len(r.mqttEvents(kind))}
}

func (r *auditedRun) mqttEvents(kind event.Kind) []testkit.Message {
	var out []testkit.Message
	for _, m := range r.events.All() {
		if testkit.Field(m, "kind") == string(kind) {
			out = append(out, m)
		}
	}
	return out
}

// checkSummarised waits for the summaries of a phase that made n attempts
// of m.kind in took, then checks that the audit entries since m account
// for all n (at least minN of them where the attempts travel by UDP,
// which a loaded machine may drop before velo reads them), are at most
// maxEntries and each bounded, and that the agent's log and MQTT carry
// one event per entry, each as the event schema says.
func (r *auditedRun) checkSummarised(t *testing.T, m mark, name string, minN, n int, took time.Duration, maxEntries int) {
	t.Helper()
	var got auditOf
	var mqtt []testkit.Message
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		now := readAudit(t, r.auditDir, string(m.kind))
		got = auditOf{entries: now.entries[len(m.audit.entries):], bytes: now.bytes - m.audit.bytes}
		mqtt = r.mqttEvents(m.kind)[m.mqtt:]
		if got.attempts() >= n && len(mqtt) >= len(got.entries) || time.Now().After(deadline) {
			break
		}
	}
	logged := r.logs.count(m.kind) - m.logged
	t.Logf("%s in %v: %d audit entries, %d bytes; %d %s events logged, %d over MQTT", name, took.Round(time.Millisecond),
		len(got.entries), got.bytes, logged, m.kind, len(mqtt))
	if got.attempts() < minN || got.attempts() > n {
		t.Errorf("%s: the audit accounts for %d attempts, there were %d", name, got.attempts(), n)
	}
	if len(got.entries) > maxEntries {
		t.Errorf("%s: %d audit entries (%d bytes), more than %d", name, len(got.entries), got.bytes, maxEntries)
	}
	if logged != len(got.entries) || len(mqtt) != len(got.entries) {
		t.Errorf("%s: %d events logged and %d over MQTT for %d audit entries", name, logged, len(mqtt), len(got.entries))
	}
	for _, e := range got.entries {
		if len(e.Actor) > audit.MaxFieldLen || len(e.Camera) > audit.MaxFieldLen || len(e.Detail) > 2048 {
			t.Errorf("%s: an unbounded entry: actor %d, camera %d, detail %d bytes", name, len(e.Actor), len(e.Camera), len(e.Detail))
			break
		}
	}
	schema := loadSchema(t, "event.schema.json")
	for _, msg := range mqtt {
		if err := checkPayload(schema, msg.Payload); err != nil {
			t.Errorf("%s: event vs docs/schemas/event.schema.json: %v: %s", name, err, msg.Payload)
		}
	}
}

// auditOf is what the audit log holds for one action: its entries and
// their bytes on disk.
type auditOf struct {
	entries []audit.Entry
	bytes   int
}

// attempts is how many attempts the entries account for: one each for an
// entry written on its own, the count of each summary.
func (x auditOf) attempts() int {
	n := 0
	for _, e := range x.entries {
		if c, ok := e.Fields["count"]; ok {
			v, _ := strconv.Atoi(c)
			n += v
		} else {
			n++
		}
	}
	return n
}

func readAudit(t *testing.T, dir, action string) auditOf {
	t.Helper()
	files, err := audit.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out auditOf
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var e audit.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if e.Action == action {
				out.entries = append(out.entries, e)
				out.bytes += len(sc.Bytes()) + 1
			}
		}
	}
	return out
}

// refusedLogin is one RTSP client (gortsplib) that asks for url and is
// refused; it reports an error when it was not.
func refusedLogin(rawURL string, local net.IP) error {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return err
	}
	c := gortsplib.Client{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if local != nil {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
		c.DialContext = d.DialContext
	}
	if err := c.Start(u.Scheme, u.Host); err != nil {
		return err
	}
	defer c.Close()
	if _, _, err := c.Describe(u); err == nil {
		return fmt.Errorf("%s: not refused", rawURL)
	}
	return nil
}

// hammer runs n refused logins, 8 at a time; url(i) and from(i) give the
// i-th attempt's URL and source address (nil: the default).
func hammer(t *testing.T, n int, url func(i int) string, from func(i int) net.IP) time.Duration {
	t.Helper()
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var errs atomic.Int64
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := refusedLogin(url(i), from(i)); err != nil && errs.Add(1) < 5 {
					t.Errorf("attempt %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	return time.Since(t0)
}

func randomName(r *rand.Rand, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

// Refused live logins cannot flood the audit log: 1,000 wrong passwords,
// 1,000 one-KB fake user names and 1,000 attempts from 250 source
// addresses, each through a real RTSP client against the agent's relay,
// leave a few bounded entries per source and minute, and those entries
// (and the access_denied events, MQTT's share) still account for every
// refused attempt.
func TestRefusedLiveLoginsAreSummarised(t *testing.T) {
	run := auditedAgent(t, "")
	rel, port := run.a.relayForTest(), run.rtspPort
	phases := []struct {
		name       string
		url        func(i int) string
		from       func(i int) net.IP
		maxEntries int // per minute the phase lasted (and one minute more)
	}{
		{"1000 wrong passwords", func(i int) string {
			return fmt.Sprintf("rtsp://ops:wrong%d@127.0.0.1:%d/cam", i, port)
		}, func(int) net.IP { return nil }, 2},
		{"1000 1-KB fake user names", func(i int) string {
			r := rand.New(rand.NewPCG(uint64(i), 2)) // url runs on 8 goroutines
			return fmt.Sprintf("rtsp://%s:x@127.0.0.1:%d/cam", randomName(r, 1024), port)
		}, func(int) net.IP { return nil }, 2},
		{"1000 attempts from 250 source addresses", func(i int) string {
			return fmt.Sprintf("rtsp://ops:wrong@127.0.0.1:%d/cam", port)
		}, func(i int) net.IP { return net.IPv4(127, 0, 91, byte(1+i%250)) }, 2 * (attempts.DefaultMaxSources + 1)},
	}
	for _, ph := range phases {
		m, denied0 := run.mark(t, event.AccessDenied), rel.Denied()
		took := hammer(t, 1000, ph.url, ph.from)
		refused := int(rel.Denied() - denied0)
		if refused < 1000 {
			t.Fatalf("%s: the relay refused %d attempts, not 1000", ph.name, refused)
		}
		run.checkSummarised(t, m, ph.name, refused, refused, took, ph.maxEntries*(int(took/time.Minute)+2))
	}
	if rep, err := audit.Verify(run.auditDir, audit.VerifyOptions{}); err != nil || !rep.OK {
		t.Errorf("audit verify: %v %v", rep, err)
	}
}

var messageID = regexp.MustCompile(`<a:MessageID>([^<]*)</a:MessageID>`)

// hostileResponder answers every WS-Discovery probe sent to addr with
// ProbeMatches, each match a device never seen before with a 1-KB name:
// hostDatagrams datagrams of 20 matches from addr itself, then one
// datagram of perSpoofed matches from each spoofed source address. It
// returns the count of devices named so far.
func hostileResponder(t *testing.T, addr *net.UDPAddr, spoofed []net.IP, hostDatagrams, perSpoofed *atomic.Int64) *atomic.Int64 {
	t.Helper()
	in, err := net.ListenUDP("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	outs := []*net.UDPConn{in}
	for _, ip := range spoofed {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, c)
	}
	t.Cleanup(func() {
		for _, c := range outs {
			c.Close()
		}
	})
	var devices atomic.Int64
	r := rand.New(rand.NewPCG(3, 4))
	match := func() string {
		n := devices.Add(1)
		return fmt.Sprintf(`<d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:%s-%08d</a:Address></a:EndpointReference>`+
			`<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name/%s onvif://www.onvif.org/hardware/%s</d:Scopes>`+
			`<d:XAddrs>http://10.9.%d.%d/onvif/device_service?%s</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch>`,
			randomName(r, 40), n, randomName(r, 1024), randomName(r, 64), n/250%250, n%250, randomName(r, 200))
	}
	reply := func(id string, matches int) []byte {
		var b strings.Builder
		b.WriteString(`<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">`)
		b.WriteString(`<s:Header><a:RelatesTo>` + id + `</a:RelatesTo></s:Header><s:Body><d:ProbeMatches>`)
		for range matches {
			b.WriteString(match())
		}
		b.WriteString(`</d:ProbeMatches></s:Body></s:Envelope>`)
		return []byte(b.String())
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := in.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m := messageID.FindSubmatch(buf[:n])
			if m == nil {
				continue
			}
			// Paced, so that the prober's socket buffer keeps every
			// datagram and the test knows what the agent received.
			for range hostDatagrams.Load() {
				_, _ = in.WriteToUDP(reply(string(m[1]), 20), from)
				time.Sleep(10 * time.Millisecond)
			}
			if k := int(perSpoofed.Load()); k > 0 {
				for _, c := range outs[1:] {
					_, _ = c.WriteToUDP(reply(string(m[1]), k), from)
					time.Sleep(4 * time.Millisecond)
				}
			}
		}
	}()
	return &devices
}

// Hostile WS-Discovery replies cannot flood the audit log: three rounds
// of one host naming 900 new devices with 1-KB names, then three rounds
// of 225 spoofed source addresses naming 4 each, leave a few bounded
// entries per source and round, and those entries (and the
// camera_unconfigured events) still account for every device named.
func TestHostileDiscoveryIsSummarised(t *testing.T) {
	host := &net.UDPAddr{IP: net.IPv4(127, 0, 97, 1), Port: testkit.FreePortOn(t, "127.0.97.1")}
	var spoofed []net.IP
	for i := range 225 {
		spoofed = append(spoofed, net.IPv4(127, 0, 96, byte(1+i)))
	}
	// Discovery is driven round by round below (its loop would wait 30 s
	// between rounds), with the settings the loop would use.
	run := auditedAgent(t, fmt.Sprintf("discovery: {enabled: false, unicast: [127.0.97.1], unicast_port: %d, window: 3s}\n", host.Port))
	var hostDatagrams, perSpoofed atomic.Int64
	devices := hostileResponder(t, host, spoofed, &hostDatagrams, &perSpoofed)
	reported := map[string]bool{} // one for the whole run, as in discoveryLoop
	phases := []struct {
		name         string
		host, spoof  int64
		roundEntries int
	}{
		{"3 rounds of one host naming 900 devices", 45, 0, 2},
		{"3 rounds of 225 spoofed sources naming 4 devices each", 0, 4, 2 * (attempts.DefaultMaxSources + 1)},
	}
	for _, ph := range phases {
		hostDatagrams.Store(ph.host)
		perSpoofed.Store(ph.spoof)
		m, devices0 := run.mark(t, event.CameraUnconfigured), devices.Load()
		t0 := time.Now()
		for range 3 {
			if err := run.a.discoverOnce(context.Background(), reported); err != nil {
				t.Fatal(err)
			}
		}
		sent := int(devices.Load() - devices0)
		run.checkSummarised(t, m, ph.name, sent/2, sent, time.Since(t0), 3*ph.roundEntries)
	}
}
