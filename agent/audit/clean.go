package audit

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFieldLen is how much of a value a hostile peer chose (a claimed user
// name, a stream path, a device's name or address) reaches the log: a
// 1-KB user name tried a thousand times must not cost a megabyte kept for
// six months.
const MaxFieldLen = 128

// Clean makes a value fit to be logged and printed: every byte that is not
// valid UTF-8, every control or format character (newlines, terminal
// escapes, bidi overrides) and the backslash are escaped the way Go
// quotes them (\n, \x1b, \u202e, \\), so a value can neither forge a line
// nor act on a terminal; then, when max > 0, the result is cut to at
// most max bytes, never inside an escape, and the cut is said
// ("…(1024 bytes)" ends it, with the original length).
func Clean(s string, max int) string {
	if max <= 0 && printable(s) {
		return s
	}
	mark := fmt.Sprintf("…(%d bytes)", len(s))
	var b strings.Builder
	keep := 0 // the output's length at the last piece boundary leaving room for the mark
	for i := 0; i < len(s); {
		piece, n := escaped(s, i)
		if b.Len() <= max-len(mark) {
			keep = b.Len()
		}
		if max > 0 && b.Len()+len(piece) > max {
			return b.String()[:keep] + mark
		}
		b.WriteString(piece)
		i += n
	}
	return b.String()
}

// escaped returns the rune of s at i as Clean writes it, and its length
// in s.
func escaped(s string, i int) (string, int) {
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && n == 1:
		return fmt.Sprintf(`\x%02x`, s[i]), 1
	case r == '\\' || !unicode.IsPrint(r) && r != ' ':
		q := strconv.QuoteRune(r)
		return q[1 : len(q)-1], n
	}
	return s[i : i+n], n
}

// printable reports whether Clean would leave s as it is.
func printable(s string) bool {
	for i := 0; i < len(s); {
		piece, n := escaped(s, i)
		if len(piece) != n || piece != s[i:i+n] {
			return false
		}
		i += n
	}
	return true
}
