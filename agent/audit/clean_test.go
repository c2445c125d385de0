package audit

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// Clean escapes what could forge a line or act on a terminal, keeps
// ordinary text (accents, CJK) as it is, and bounds a value at max bytes
// without cutting an escape, saying how long the value was.
func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"ops", "ops"},
		{"Zoë 田中 o'neil \"q\"", "Zoë 田中 o'neil \"q\""},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"x\u202egnp.exe", `x\u202egnp.exe`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"bad\xff\xfe", `bad\xff\xfe`},
		{`back\slash`, `back\\slash`},
		{"line\u2028sep", `line\u2028sep`},
	} {
		if got := Clean(c.in, 0); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := Clean(c.in, MaxFieldLen); got != c.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", c.in, MaxFieldLen, got, c.want)
		}
	}
	long := strings.Repeat("é", 600) // 1200 bytes
	got := Clean(long, MaxFieldLen)
	if len(got) > MaxFieldLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…(1200 bytes)") || !strings.HasPrefix(got, "ééé") {
		t.Errorf("a long value: %d bytes %q", len(got), got)
	}
	esc := Clean(strings.Repeat("\x1b", 100), 64) // 400 bytes once escaped
	if len(esc) > 64 || !strings.HasSuffix(esc, `\x1b…(100 bytes)`) {
		t.Errorf("escapes cut: %d bytes %q", len(esc), esc)
	}
	if s := Clean(strings.Repeat("a", MaxFieldLen), MaxFieldLen); len(s) != MaxFieldLen || strings.Contains(s, "…") {
		t.Errorf("a value of exactly max bytes was cut: %q", s)
	}
	for _, r := range Clean(string([]byte{0, 1, 2, 0x1b, 0x7f, 0x80, 0x9b, 0xc2, 0x9b}), 0) {
		if !unicode.IsPrint(r) {
			t.Errorf("Clean left %U", r)
		}
	}
}
