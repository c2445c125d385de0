package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"velo/agent/telemetry"
	"velo/internal/testkit"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// The shipped central broker config (deploy/mosquitto: velo.conf, acl,
// issue-cert.sh) on a real Mosquitto: a gateway with its own certificate
// publishes its telemetry and gets its commands; another gateway's
// certificate can neither write its topics, nor read its commands, nor
// take over its session by asking for its client id
// (use_username_as_clientid).
func TestCentralMosquittoConfig(t *testing.T) {
	t.Parallel()
	pki := t.TempDir()
	issue := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("../deploy/mosquitto/issue-cert.sh", append([]string{pki}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("issue-cert.sh %v: %v: %s", args, err, out)
		}
	}
	issue("ca")
	issue("server", "broker", "127.0.0.1")
	issue("client", "gw-a")
	issue("client", "gw-b")
	issue("client", "central-ops")
	if st, _ := os.Stat(filepath.Join(pki, "gw-a.key")); st == nil || st.Mode().Perm() != 0o600 {
		t.Error("testkit.Issued key is not mode 0600")
	}
	conf, err := os.ReadFile("../deploy/mosquitto/velo.conf")
	if err != nil {
		t.Fatal(err)
	}
	acl, _ := os.ReadFile("../deploy/mosquitto/acl")
	if err := os.WriteFile(filepath.Join(pki, "acl"), acl, 0o600); err != nil {
		t.Fatal(err)
	}
	m := testkit.LaunchMosquitto(t, func(port int, dir, logFile string) string {
		text := strings.ReplaceAll(string(conf), "/etc/mosquitto/velo/", pki+"/")
		text = strings.Replace(text, "listener 8883", "listener "+strconv.Itoa(port)+" 127.0.0.1", 1)
		text += "persistence_location " + dir + "/\nlog_dest file " + logFile + "\n"
		if os.Geteuid() == 0 {
			text = "user root\n" + text
		}
		return text
	})

	clientTLS := func(name string) *tls.Config {
		pem, _ := os.ReadFile(filepath.Join(pki, "ca.pem"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		kp, err := tls.LoadX509KeyPair(filepath.Join(pki, name+".pem"), filepath.Join(pki, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	}
	ops := testkit.NewCollector(t, testkit.CollectorOptions{URL: m.URL(true), TLS: clientTLS("central-ops")}, "velo/#")

	// gw-a as itself: telemetry in, commands in, replies out.
	var cmds, losses atomic.Int32
	ob, err := telemetry.OpenOutbox(filepath.Join(t.TempDir(), "o.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	tel, err := telemetry.NewTelemetry(telemetry.TelemetryConfig{Site: "s", Gateway: "gw-a", URL: m.URL(true), TLS: clientTLS("gw-a"), Outbox: ob,
		OnCommand: func(verb string, _ []byte) { cmds.Add(1) },
		OnConnection: func(up bool, _ string) {
			if !up {
				losses.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go tel.Run(ctxUntil(stop))
	defer close(stop)
	ops.Wait(t, 15*time.Second, "gw-a birth", func(r testkit.Message) bool {
		return r.Topic == "velo/s/gw-a/status" && testkit.Field(r, "state") == "online"
	})
	if _, err := tel.Publish("cmd/state/refresh/reply", map[string]string{"status": "ok"}); err != nil {
		t.Fatal(err)
	}
	ops.Wait(t, 10*time.Second, "gw-a reply", func(r testkit.Message) bool { return r.Topic == "velo/s/gw-a/cmd/state/refresh/reply" })
	ops.Client().Publish("velo/s/gw-a/cmd/state/refresh", 1, false, "{}").WaitTimeout(5 * time.Second)
	testkit.WaitFor(t, 10*time.Second, "command delivered to gw-a", func() bool { return cmds.Load() == 1 })

	// gw-b's certificate cannot write gw-a's topics, read its commands or
	// take over its session with its client id.
	var stolen atomic.Int32
	rogue := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(m.URL(true)).SetClientID("velo-s-gw-a").SetTLSConfig(clientTLS("gw-b")).
		SetCleanSession(false).SetAutoReconnect(false))
	if tok := rogue.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer rogue.Disconnect(0)
	rogue.Subscribe("velo/s/gw-a/cmd/#", 1, func(mqtt.Client, mqtt.Message) { stolen.Add(1) }).WaitTimeout(5 * time.Second)
	rogue.Publish("velo/s/gw-a/status", 1, true, `{"state":"forged"}`).WaitTimeout(5 * time.Second)
	rogue.Publish("velo/s/gw-b/events", 1, false, `{"kind":"marker"}`).WaitTimeout(5 * time.Second)
	ops.Client().Publish("velo/s/gw-a/cmd/preset/apply", 1, false, "{}").WaitTimeout(5 * time.Second)
	ops.Wait(t, 10*time.Second, "gw-b's own-topic marker", func(r testkit.Message) bool { return testkit.Field(r, "kind") == "marker" })
	testkit.WaitFor(t, 10*time.Second, "the second command delivered to gw-a", func() bool { return cmds.Load() == 2 })
	time.Sleep(500 * time.Millisecond)
	for _, r := range ops.All() {
		if r.Topic == "velo/s/gw-a/status" && testkit.Field(r, "state") != "online" {
			t.Errorf("gw-a's status %s: gw-b's certificate wrote it or took gw-a's session over", r.Payload)
		}
	}
	if stolen.Load() != 0 {
		t.Error("gw-b's certificate read gw-a's commands")
	}
	if losses.Load() != 0 || !tel.Connected() {
		t.Errorf("gw-a lost its session %d times while gw-b's certificate used its client id", losses.Load())
	}
	// A gateway's message over max_packet_size never reaches a consumer
	// (the broker disconnects the sender); a normal one after it does.
	big := `{"kind":"oversize","pad":"` + strings.Repeat("x", 300<<10) + `"}`
	rogue.Publish("velo/s/gw-b/events", 1, false, big).WaitTimeout(5 * time.Second)
	if _, err := tel.Publish("events", map[string]string{"kind": "after-oversize"}); err != nil {
		t.Fatal(err)
	}
	ops.Wait(t, 10*time.Second, "the event after the oversize one", func(r testkit.Message) bool { return testkit.Field(r, "kind") == "after-oversize" })
	for _, r := range ops.All() {
		if testkit.Field(r, "kind") == "oversize" {
			t.Errorf("a %d-byte message went through the broker (max_packet_size)", len(r.Payload))
		}
	}
}

// ctxUntil is a context cancelled when stop closes.
func ctxUntil(stop <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-stop; cancel() }()
	return ctx
}
