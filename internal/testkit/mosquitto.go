package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mosquitto is a real Mosquitto (the Debian package) started by a test on
// a free loopback port with a generated config. It can be stopped,
// restarted on the same port (persistence kept), frozen and thawed.
type Mosquitto struct {
	t    *testing.T
	dir  string
	port int
	conf string
	log  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// MosquittoOptions configure StartMosquitto.
type MosquittoOptions struct {
	TLS         *PKI // server cert from it; TLS listener
	RequireCert bool // mutual TLS: client certificate required
	Users       map[string]string
	ACL         string
}

// StartMosquitto starts a broker on a free loopback port with persistence,
// the given users, ACL and TLS.
func StartMosquitto(t *testing.T, o MosquittoOptions) *Mosquitto {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		t.Fatal("mosquitto not installed (make deps installs it)")
	}
	dir := t.TempDir()
	m := &Mosquitto{t: t, dir: dir, port: FreePort(t), log: filepath.Join(dir, "mosquitto.log")}
	var c strings.Builder
	if os.Geteuid() == 0 {
		c.WriteString("user root\n")
	}
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", m.port)
	fmt.Fprintf(&c, "persistence true\npersistence_location %s/\nautosave_interval 1\n", dir)
	c.WriteString("max_queued_messages 0\nmax_queued_bytes 0\n")
	fmt.Fprintf(&c, "log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nconnection_messages true\n", m.log)
	if len(o.Users) > 0 {
		pw := filepath.Join(dir, "passwd")
		for u, p := range o.Users {
			args := []string{"-b", pw, u, p}
			if _, err := os.Stat(pw); err != nil {
				args = append([]string{"-c"}, args...)
			}
			if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		fmt.Fprintf(&c, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		c.WriteString("allow_anonymous true\n")
	}
	if o.ACL != "" {
		p := filepath.Join(dir, "acl")
		if err := os.WriteFile(p, []byte(o.ACL), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&c, "acl_file %s\n", p)
	}
	if o.TLS != nil {
		srv := o.TLS.Issue(t, "broker", true)
		fmt.Fprintf(&c, "cafile %s\ncertfile %s\nkeyfile %s\ntls_version tlsv1.2\n", o.TLS.CAFile, srv.CertFile, srv.KeyFile)
		if o.RequireCert {
			c.WriteString("require_certificate true\nuse_identity_as_username true\n")
		}
	}
	return m.launch(c.String())
}

// LaunchMosquitto starts a broker with the config that config returns for
// its free loopback port, its own folder and its log file.
func LaunchMosquitto(t *testing.T, config func(port int, dir, logFile string) string) *Mosquitto {
	t.Helper()
	m := &Mosquitto{t: t, dir: t.TempDir(), port: FreePort(t)}
	m.log = filepath.Join(m.dir, "mosquitto.log")
	return m.launch(config(m.port, m.dir, m.log))
}

// launch writes text as the config and starts the broker.
func (m *Mosquitto) launch(text string) *Mosquitto {
	t := m.t
	t.Helper()
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Kill)
	return m
}

func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command("mosquitto", "-c", m.conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.cmd = cmd
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", m.Addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(m.log)
			m.t.Fatalf("mosquitto did not listen on %s: %s", m.Addr(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *Mosquitto) Addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }

// URL returns the broker URL (mqtts:// when TLS).
func (m *Mosquitto) URL(tls bool) string {
	if tls {
		return "mqtts://" + m.Addr()
	}
	return "tcp://" + m.Addr()
}

// stop stops the broker gracefully (it saves its persistence).
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	_ = m.cmd.Wait()
	m.cmd = nil
}

func (m *Mosquitto) Signal(s syscall.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		_ = m.cmd.Process.Signal(s)
	}
}

func (m *Mosquitto) Kill() {
	m.Signal(syscall.SIGCONT)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

// Log returns the broker's log.
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

// PKI is a generated CA that issues server and client certificates.
type PKI struct {
	dir    string
	CAFile string
	ca     *x509.Certificate
	key    *ecdsa.PrivateKey
}

type Issued struct{ CertFile, KeyFile string }

func NewPKI(t *testing.T, name string) *PKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &PKI{dir: t.TempDir(), ca: ca, key: key}
	p.CAFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

var serials struct {
	sync.Mutex
	n int64
}

// issue makes a certificate for cn (a server for 127.0.0.1, or a client).
func (p *PKI) Issue(t *testing.T, cn string, server bool) Issued {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serials.Lock()
	serials.n++
	sn := serials.n + 100
	serials.Unlock()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(sn), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	out := Issued{CertFile: filepath.Join(p.dir, cn+".pem"), KeyFile: filepath.Join(p.dir, cn+".key")}
	writePEM(t, out.CertFile, "CERTIFICATE", der)
	writePEM(t, out.KeyFile, "EC PRIVATE KEY", kd)
	return out
}

// clientTLS is a TLS config trusting p, with an optional client cert.
func (p *PKI) ClientTLS(t *testing.T, cert *Issued) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	c := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c
}

// collector subscribes to a topic filter with a persistent session and
// keeps every message in arrival order.
type Collector struct {
	cl mqtt.Client

	mu   sync.Mutex
	msgs []Message
	cond chan struct{}
}

type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	Seq      uint64
}

type CollectorOptions struct {
	URL, ClientID, Username, Password string
	TLS                               *tls.Config
}

func NewCollector(t *testing.T, o CollectorOptions, filter string) *Collector {
	t.Helper()
	c := &Collector{cond: make(chan struct{})}
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("collector-%d", time.Now().UnixNano())
	}
	opts := mqtt.NewClientOptions().AddBroker(o.URL).SetClientID(o.ClientID).SetCleanSession(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetKeepAlive(5 * time.Second).SetPingTimeout(5 * time.Second).
		SetUsername(o.Username).SetPassword(o.Password)
	if o.TLS != nil {
		opts.SetTLSConfig(o.TLS)
	}
	opts.SetOnConnectHandler(func(cl mqtt.Client) {
		cl.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
			var env struct {
				Seq uint64 `json:"seq"`
			}
			_ = json.Unmarshal(m.Payload(), &env)
			c.mu.Lock()
			c.msgs = append(c.msgs, Message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained(), Seq: env.Seq})
			close(c.cond)
			c.cond = make(chan struct{})
			c.mu.Unlock()
		})
	})
	c.cl = mqtt.NewClient(opts)
	tok := c.cl.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.cl.Disconnect(100) })
	return c
}

// all returns the messages so far.
func (c *Collector) All() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// wait returns the first message (from index from) for which ok is true.
func (c *Collector) Wait(t *testing.T, d time.Duration, what string, ok func(Message) bool) Message {
	t.Helper()
	deadline := time.After(d)
	for i := 0; ; {
		c.mu.Lock()
		msgs := c.msgs[i:]
		ch := c.cond
		c.mu.Unlock()
		for _, m := range msgs {
			if ok(m) {
				return m
			}
		}
		i += len(msgs)
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s within %v", what, d)
		}
	}
}

// field decodes one JSON field of a payload.
func Field(m Message, name string) string {
	var v map[string]any
	if json.Unmarshal(m.Payload, &v) != nil {
		return ""
	}
	s, ok := v[name].(string)
	if !ok && v[name] != nil {
		b, _ := json.Marshal(v[name])
		return string(b)
	}
	return s
}

// Client is the collector's MQTT client (to publish as the collector).
func (c *Collector) Client() mqtt.Client { return c.cl }
