package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"velo/agent/access"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestMain lets the test binary act as velo (VELO_CLI_CHILD=1), so a test
// can signal a real `velo run` process.
func TestMain(m *testing.M) {
	if os.Getenv("VELO_CLI_CHILD") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// oldCredentialLine is operator old's $velo1$ line for site s.
const oldCredentialLine = "$velo1$s$old$5b6369f2eb0e034d2adef6d0a0a9101d9c406261580af51723ab1347c70344af$f8ce1ca19448740adbe17d4d892bf7e0070fe9bf4cfe64cb616f290aafe909c1$9bd2357f8717f6cffd08865d0af8ecfe$b3631101496573a0c81d9bb741bda4d009780bebe486c7736cdf3e7099ee6f1c"

const runConfig = `site: {id: s, name: S, controller: C, purposes: [p]}
gateway: g
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "%s"}
outputs: {rtsp_listen: "%s"}
operators:
%s`

// velo run with the embedded broker: SIGHUP with a broken config is
// refused (the old config keeps running), SIGHUP with a good one applies
// it; velo command signs commands that the running agent executes or
// refuses.
func TestRunSIGHUPAndCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Each operator keeps their password (*.pw, for velo command); the
	// gateway keeps their credential line (*.cred).
	write("admin.pw", "admin-secret-9\n")
	write("new.pw", "new-secret-8\n")
	write("admin.cred", access.HashCredential("s", "admin", "admin-secret-9", 1, time.Now().Add(time.Hour))+"\n")
	write("new.cred", access.HashCredential("s", "newop", "new-secret-8", 1, time.Now().Add(time.Hour))+"\n")
	brokerAddr, rtsp := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "site.yaml")
	// An old $velo1$ line, as earlier versions of velo passwd wrote it
	// (password old-secret-7): it verifies no command.
	write("old.pw", "old-secret-7\n")
	write("old.cred", oldCredentialLine+"\n")
	admin := "  - {name: admin, password_file: admin.cred, roles: [admin], combined_roles_reason: site owner}\n"
	old := "  - {name: old, password_file: old.cred, roles: [admin], combined_roles_reason: site owner}\n"
	write("site.yaml", fmt.Sprintf(runConfig, brokerAddr, rtsp, admin+old))
	write("cli.yaml", fmt.Sprintf(runConfig, brokerAddr, rtsp, admin+old)) // velo command's copy (site.yaml gets broken)

	// systemd's notify socket: velo says READY=1, then pings the watchdog.
	sock := filepath.Join(dir, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	notes := make(chan string, 16)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			select {
			case notes <- string(buf[:n]):
			default: // keep reading: later pings are not checked
			}
		}
	}()
	cmd := exec.Command(os.Args[0], "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "VELO_CLI_CHILD=1", "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=300000")
	var logs lockedBuf
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		for _, s := range []string{"admin-secret-9", "new-secret-8"} {
			if strings.Contains(logs.String(), s) {
				t.Error("a secret in the logs")
			}
		}
	}()
	waitLog := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), what); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", what, logs.String())
			}
		}
	}
	for _, want := range []string{"READY=1", "WATCHDOG=1"} {
		select {
		case got := <-notes:
			if got != want {
				t.Errorf("notify %q, want %q", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s on the notify socket", want)
		}
	}
	waitLog("mqtt: connected")
	if !strings.Contains(logs.String(), "embedded MQTT broker started") {
		t.Error("velo run does not say it started the embedded broker")
	}
	command := func(op, pwf string, args ...string) (string, string, int) {
		return runCLI(t, append([]string{"command", "--config", filepath.Join(dir, "cli.yaml"), "--operator", op, "--password-file", filepath.Join(dir, pwf), "--wait", "20s"}, args...)...)
	}
	if out, errs, code := command("admin", "admin.pw", "state/refresh"); code != 0 || !strings.Contains(out, `"status":"ok"`) {
		t.Fatalf("state/refresh: %d %s %s", code, out, errs)
	}
	// The gateway's credential file is not the operator's password, and
	// an old $velo1$ line is refused for commands, naming the file and
	// the fix.
	if _, errs, code := command("admin", "admin.cred", "state/refresh"); code == 0 || !strings.Contains(errs, "hashed credential") {
		t.Errorf("command signed from the credential file: %d %s", code, errs)
	}
	if out, errs, code := command("old", "old.pw", "state/refresh"); code != 1 || !strings.Contains(out, `"status":"refused"`) ||
		!strings.Contains(out, "old.cred is an old $velo1$ credential") || !strings.Contains(errs, "re-run velo passwd") {
		t.Errorf("command from an old credential line: %d %s %s", code, out, errs)
	}
	// Broken config + SIGHUP: refused, old config still in force.
	write("site.yaml", "site: [\n")
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog("SIGHUP: config refused")
	if _, _, code := command("admin", "admin.pw", "state/refresh"); code != 0 {
		t.Error("the old config stopped working after a refused reload")
	}
	// Good config + SIGHUP: a new operator exists after it.
	if _, _, code := command("newop", "new.pw", "state/refresh"); code == 0 {
		t.Fatal("an unknown operator's command was executed")
	}
	write("site.yaml", fmt.Sprintf(runConfig, brokerAddr, rtsp, admin+"  - {name: newop, password_file: new.cred, roles: [live-viewer]}\n"))
	write("cli.yaml", fmt.Sprintf(runConfig, brokerAddr, rtsp, admin+"  - {name: newop, password_file: new.cred, roles: [live-viewer]}\n"))
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog("SIGHUP: config applied")
	if out, errs, code := command("newop", "new.pw", "state/refresh"); code != 0 {
		t.Errorf("new operator after reload: %d %s %s", code, out, errs)
	}
	// A role without the right: refused, exit status 1, even with a
	// forger on the broker answering every command it sees with "ok"
	// (it may not read commands nor write replies: only Velo may).
	forge(t, brokerAddr, "admin", "admin-secret-9")
	if out, _, code := command("newop", "new.pw", "config/reload"); code != 1 || !strings.Contains(out, `"status":"refused"`) {
		t.Errorf("live-viewer config/reload: exit %d, %s", code, out)
	}
}

// A notify socket nobody reads must not hang velo: once its queue is full
// a notification gives up after a second.
func TestSdNotifyNeverBlocks(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "n.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	failed := 0
	start := time.Now()
	for i := 0; i < 64 && failed < 2; i++ { // the kernel queues a few (net.unix.max_dgram_qlen)
		if sdNotify("WATCHDOG=1") != nil {
			failed++
		}
	}
	if failed < 2 {
		t.Fatal("64 notifications queued on a socket nobody reads")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// forge logs in to the embedded broker as an operator and answers every
// command it can see with a forged "ok" reply.
func forge(t *testing.T, addr, op, password string) {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("forger").
		SetUsername(op).SetPassword(access.StreamPassword("s", op, password, 1)))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("forger login: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	cl.Subscribe("velo/s/g/cmd/+/+", 1, func(c mqtt.Client, m mqtt.Message) {
		var cmd struct {
			RequestID string `json:"request_id"`
		}
		if strings.HasSuffix(m.Topic(), "/reply") || json.Unmarshal(m.Payload(), &cmd) != nil {
			return
		}
		sum := sha256.Sum256(m.Payload())
		c.Publish(m.Topic()+"/reply", 1, false, fmt.Sprintf(`{"request_id":%q,"status":"ok","verb":"config/reload","command_sha256":"%x"}`, cmd.RequestID, sum))
	}).WaitTimeout(5 * time.Second)
}
