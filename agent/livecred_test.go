package agent

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/retention"
	"velo/internal/testkit"
)

// An RTSP digest HA1 read from a credential file opens live streams only
// until it expires: the relay's lookup refuses an expired stream password
// at the moment of the lookup (no reload needed), gives the HA1 of the
// operator's current generation before, and the previous generation's
// password is not it.
func TestStreamPasswordExpiresAtTheRelay(t *testing.T) {
	const pass = "live-secret-7"
	start := time.Now()
	expires := start.Add(30 * 24 * time.Hour)
	text := strings.Replace(testkit.SiteYAML, "password_file: ops.pw", "password_file: ops.cred", 1)
	text = strings.Replace(text, "operators:\n", "operators:\n  - {name: late, password_file: late.cred, roles: [live-viewer], cameras: [cam1]}\n", 1)
	p := testkit.WriteSite(t, text)
	for name, line := range map[string]string{
		"ops.cred":  access.HashCredential("test-site", "ops", pass, 2, expires),
		"late.cred": access.HashCredential("test-site", "late", pass, 1, start.Add(-time.Minute)),
	} {
		if err := os.WriteFile(filepath.Join(filepath.Dir(p), name), []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	a := New(cfg, zerolog.Nop(), Options{Clock: movedClock{retention.NewSystemClock(), &clock}})

	sec, ok := a.liveAllowed("ops", "cam1")
	if !ok || sec.HA1MD5 != md5Hex("ops:"+access.RTSPRealm+":"+access.StreamPassword("test-site", "ops", pass, 2)) {
		t.Fatalf("valid stream password: allowed=%v, HA1 not the current generation's", ok)
	}
	if sec.HA1MD5 == md5Hex("ops:"+access.RTSPRealm+":"+access.StreamPassword("test-site", "ops", pass, 1)) {
		t.Error("the previous generation's stream password still matches")
	}
	if _, ok := a.liveAllowed("late", "cam1"); ok {
		t.Error("an expired stream password was accepted")
	}
	clock.Store(expires.Add(time.Second).UnixNano())
	if sec, ok := a.liveAllowed("ops", "cam1"); ok || sec.HA1MD5 != "" {
		t.Error("a stream password past its expiry was accepted")
	}
	var ws []string
	for _, w := range cfg.Warnings {
		if strings.HasPrefix(w, "operators[") {
			t.Logf("config warning: %s", w)
			ws = append(ws, w)
		}
	}
	if len(ws) != 1 || !strings.Contains(ws[0], `operator "late"`) || !strings.Contains(ws[0], "expired") {
		t.Errorf("operator warnings %v", ws)
	}
}

func md5Hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
