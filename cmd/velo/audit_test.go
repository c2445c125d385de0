package main

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"velo/agent/audit"
)

// velo audit show prints what a hostile peer put in an entry (a claimed
// user name, a stream path, a device name) without letting it act on the
// terminal: no newline that forges another entry, no escape sequence that
// recolours or clears the screen, no control or bidi character; each
// entry is one line, and the filters still match the stored value.
func TestAuditShowEscapesForgedFields(t *testing.T) {
	dir := t.TempDir()
	al, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	forged := "ops\x1b[2J\x1b[31m\n     9 2026-01-01T00:00:00Z admin      export\r"
	for _, e := range []audit.Entry{
		{Actor: forged, Action: "access_denied", Camera: "cam\n\x07", Outcome: "refused", Detail: "refused \u202egnp.exe\x00 \u009b31m"},
		{Actor: "agent", Action: "drift\x1b]0;owned\x07", Outcome: "ok\x7f", Reason: "r\tx", Ref: "ref\u2028next", Detail: string([]byte{0xff, 0xfe})},
		{Actor: "ops", Action: "live_view", Camera: "cam", Outcome: "ok", Detail: "masked live stream opened"},
	} {
		if _, err := al.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	so, se, code := runCLI(t, "audit", "show", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	if n := strings.Count(so, "\n"); n != 3 {
		t.Errorf("%d lines for 3 entries:\n%s", n, so)
	}
	if !utf8.ValidString(so) {
		t.Errorf("the output is not UTF-8: %q", so)
	}
	for i, r := range strings.ReplaceAll(so, "\n", "") {
		if !unicode.IsPrint(r) && r != ' ' {
			t.Errorf("byte %d of the output is %U:\n%q", i, r, so)
			break
		}
	}
	for _, want := range []string{`ops\x1b[2J\x1b[31m\n`, `\u202e`, `drift\x1b]0;owned\a`} {
		if !strings.Contains(so, want) {
			t.Errorf("output lacks the escaped %s:\n%s", want, so)
		}
	}
	so, _, code = runCLI(t, "audit", "show", "--dir", dir, "--operator", forged)
	if code != 0 || strings.Count(so, "\n") != 1 || !strings.Contains(so, "access_denied") {
		t.Errorf("--operator with the stored name: %d\n%s", code, so)
	}
}
