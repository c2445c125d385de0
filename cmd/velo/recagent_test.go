package main

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"velo/agent/audit"
	"velo/agent/recserve"
	"velo/internal/testkit"
)

// rawRequest sends req on the socket as a client of its own and returns
// everything the agent answers before it closes the connection.
func rawRequest(t *testing.T, sock, req string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { _, _ = c.Write([]byte(req)) }()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

// G-3.4, G-3.3.1 a/b, ER-4.4: the recordings are reachable only through
// the running agent, and every refusal goes through it too: velo
// recording without velo run names the socket and gets nothing; a wrong
// password, a viewer asking for a camera not theirs and a missing or
// unknown reason are refused and audited with the peer's credentials;
// clients that send garbage, too much or nothing are answered and cut
// within the request deadline while the agent keeps serving.
func TestG34_RecordingsOnlyThroughTheAgent(t *testing.T) {
	cfg, dir := safeSite(t)
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(text), "operators:\n",
		"operators:\n  - {name: v2, password_file: v2.pw, roles: [recording-viewer], cameras: [cam2]}\n", 1)), 0o600)
	testkit.SecretFile(t, dir, "v2.pw", "viewer-two-secret\n")
	testkit.SecretFile(t, dir, "bad.pw", "not-the-password\n")
	seg := sealedSegment(t, dir)
	// The socket sits where another user may reach it, in a group of
	// their own (tried as nobody when the test runs as root).
	pub := publicDir(t)
	sock := filepath.Join(pub, "run", "rec.sock")
	text, _ = os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(text), "recording_socket: rec.sock", "recording_socket: "+sock, 1)), 0o600)
	cli := func(op, pwf string, args ...string) (string, string, int) {
		base := []string{"recording", args[0], "--config", cfg, "--operator", op, "--password-file", filepath.Join(dir, pwf)}
		return runCLI(t, append(base, args[1:]...)...)
	}
	if _, se, code := cli("exp", "exp.pw", "list"); code != 1 || !strings.Contains(se, sock) || !strings.Contains(se, "only through the running agent") {
		t.Errorf("list without velo run: %d %s", code, se)
	}
	logs, stop := startAgent(t, cfg)
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != recserve.SocketMode {
		t.Errorf("socket %v %v, want mode %o", st.Mode(), err, recserve.SocketMode)
	}
	// Clients that hang, one with half a request, hold all slots but one
	// while the rest goes on.
	began := time.Now()
	var hung []net.Conn
	for i := range recserve.MaxConns - 1 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i == 0 {
			c.Write([]byte(`{"v":1,"op":"list","operator":"exp"`))
		}
		hung = append(hung, c)
	}
	// One more takes the last slot: the next client is told the agent is
	// busy, at once; once that one hangs up, its slot is free again.
	last, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer last.Close()
	// Until the agent has accepted it, a probe may still find a slot.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := rawRequest(t, sock, "{}\n")
		if strings.Contains(r, "busy") {
			break
		}
		if !strings.Contains(r, "protocol version 0") || time.Now().After(deadline) {
			t.Errorf("a client past the bound answered %q", r)
			break
		}
	}
	last.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := rawRequest(t, sock, "GET / HTTP/1.0\r\n\r\n")
		if strings.Contains(r, "not a JSON request") {
			break
		}
		if !strings.Contains(r, "busy") || time.Now().After(deadline) {
			t.Fatalf("garbage answered %q", r)
		}
	}
	if r := rawRequest(t, sock, `{"v":1,"op":"list","operator":"exp","password":"`+strings.Repeat("a", recserve.MaxRequest)+"\"}\n"); !strings.Contains(r, "larger than 16384 bytes") {
		t.Errorf("oversized request answered %.200q", r)
	}
	if r := rawRequest(t, sock, `{"v":1,"op":"delete","operator":"exp","password":"x"}`+"\n"); !strings.Contains(r, `unknown operation \"delete\"`) {
		t.Errorf("unknown operation answered %q", r)
	}
	if _, se, code := cli("exp", "bad.pw", "list"); code != 1 || !strings.Contains(se, "refused") || !strings.Contains(se, "authentication failed") {
		t.Errorf("wrong password: %d %s", code, se)
	}
	// v2 views recordings of cam2 only.
	if _, se, code := cli("v2", "v2.pw", "view", "--segment", seg, "--reason", "maintenance", "--ref", "T-1", "--out", filepath.Join(dir, "v2.mkv")); code != 1 || !strings.Contains(se, "refused") || !strings.Contains(se, "cam1") {
		t.Errorf("viewer of another camera: %d %s", code, se)
	}
	if so, se, code := cli("v2", "v2.pw", "list"); code != 0 || strings.Contains(so, seg) {
		t.Errorf("list by the viewer of another camera: %d %s %s", code, so, se)
	}
	out := filepath.Join(dir, "view.mkv")
	for _, reason := range []string{"", "curiosity"} {
		if _, se, code := cli("exp", "exp.pw", "view", "--segment", seg, "--reason", reason, "--ref", "T-1", "--out", out); code != 1 || !strings.Contains(se, "ER-4.4") {
			t.Errorf("view for reason %q: %d %s", reason, code, se)
		}
	}
	if _, err := os.Lstat(out); err == nil {
		t.Error("a refused view left its --out file")
	}
	if so, se, code := cli("exp", "exp.pw", "view", "--segment", seg, "--reason", "maintenance", "--ref", "T-1", "--out", out); code != 0 {
		t.Fatalf("view: %d %s %s", code, so, se)
	}
	if b, _ := os.ReadFile(out); string(b) != "not really matroska" {
		t.Errorf("viewed %q", b)
	}
	if os.Geteuid() == 0 {
		anotherUser(t, cfg, dir, pub, sock, seg)
	}
	// The hung clients are cut at the request deadline, told why.
	for i, c := range hung {
		_ = c.SetReadDeadline(time.Now().Add(recserve.RequestTimeout + 20*time.Second))
		b, err := io.ReadAll(c)
		if err != nil || !strings.Contains(string(b), "not sent within") {
			t.Errorf("hung client %d: %q %v after %v", i, b, err, time.Since(began).Round(time.Millisecond))
		}
	}
	t.Logf("%d hung clients cut after %v", len(hung), time.Since(began).Round(time.Millisecond))
	if so, se, code := cli("exp", "exp.pw", "list"); code != 0 || !strings.Contains(so, seg) {
		t.Errorf("list after the hostile clients: %d %s %s", code, so, se)
	}
	stop()
	so, _, _ := runCLI(t, "audit", "show", "--dir", filepath.Join(dir, "state", "audit"), "--json")
	got := map[string]audit.Entry{}
	byNobody := false
	for _, line := range strings.Split(strings.TrimSpace(so), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		got[e.Actor+"/"+e.Action+"/"+e.Outcome+"/"+e.Reason] = e
		byNobody = byNobody || e.Action == "recording_list" && e.Fields["peer_uid"] == strconv.Itoa(nobody)
	}
	uid := strconv.Itoa(os.Getuid())
	if os.Geteuid() == 0 && !byNobody {
		t.Error("the list by another user is not audited with their uid")
	}
	for _, want := range []string{"exp/recording_list/refused/", "v2/recording_access/refused/maintenance", "exp/recording_access/refused/",
		"exp/recording_access/refused/curiosity", "exp/recording_access/ok/maintenance", "v2/recording_list/ok/"} {
		if e, ok := got[want]; !ok || e.Fields["peer_uid"] != uid || e.Fields["peer_pid"] == "" {
			t.Errorf("audit: no %s with the peer's uid %s: %+v", want, uid, e)
		}
	}
	for _, s := range []string{"not-the-password", "viewer-two-secret", "exporter-secret-2"} {
		if strings.Contains(logs.String(), s) || strings.Contains(so, s) {
			t.Errorf("a password in the agent's log or the audit log")
		}
	}
	if !strings.Contains(logs.String(), "uid "+uid) || !strings.Contains(logs.String(), "request refused: not a JSON request") {
		t.Errorf("the agent's log names no peer or no refused request:\n%s", logs.String())
	}
}

// publicDir is a folder another user can enter, with run/ in it (0750,
// group nobody) for the socket.
func publicDir(t *testing.T) string {
	t.Helper()
	pub, err := os.MkdirTemp("", "velo-rec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	os.Chmod(pub, 0o755)
	os.Mkdir(filepath.Join(pub, "run"), 0o750)
	os.Chown(filepath.Join(pub, "run"), 0, nobody)
	return pub
}

const nobody = 65534

// anotherUser: velo recording run as nobody (its own copy of velo, the
// config's text and its password file) is refused at the socket outside
// the socket's group and served inside it, with nobody's uid audited; it
// can read neither the gateway key nor the segment keys.
func anotherUser(t *testing.T, cfg, dir, pub, sock, seg string) {
	text, _ := os.ReadFile(cfg)
	pubCfg := filepath.Join(pub, "site.yaml")
	os.WriteFile(pubCfg, text, 0o644)
	pwf := testkit.SecretFile(t, pub, "exp.pw", "exporter-secret-2\n")
	os.Chown(pwf, nobody, nobody)
	bin := filepath.Join(pub, "velo")
	if b, err := os.ReadFile(os.Args[0]); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) (string, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = pub, append(os.Environ(), "VELO_CLI_CHILD=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	list := []string{bin, "recording", "list", "--config", pubCfg, "--operator", "exp", "--password-file", pwf}
	if o, err := asNobody(list...); err == nil || !strings.Contains(o, sock) || !strings.Contains(o, "permission denied") {
		t.Errorf("another user outside the socket's group: %v %s", err, o)
	}
	os.Chown(sock, 0, nobody)
	if o, err := asNobody(list...); err != nil || !strings.Contains(o, seg) {
		t.Errorf("another user in the socket's group: %v %s", err, o)
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "state", "keys", "*.key"))
	for _, k := range append(keys, filepath.Join(dir, "state", "recording.key")) {
		if o, err := asNobody("cat", k); err == nil {
			t.Errorf("%s readable by another user: %q", k, o)
		}
	}
}
