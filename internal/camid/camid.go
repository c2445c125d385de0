// Package camid is the one rule for camera IDs. An ID is used as it is
// everywhere: config, recorded file names, MQTT topics, RTSP URLs, the
// audit log. So the config refuses an ID that one of those would have to
// alter: altering is how two cameras end up sharing files, or a camera's
// segments lose their retention and their viewers.
package camid

import (
	"fmt"
	"unicode/utf8"
)

// MaxLen is the longest ID: a segment's file name (ID, start time,
// extension) stays far below the 255 bytes of a file name.
const MaxLen = 64

// Rule says in words what Check enforces, for error messages and docs.
const Rule = "1 to 64 characters among A-Z a-z 0-9 . _ -, starting with a letter or digit"

// Check returns an error naming the rule when id cannot be used as it is.
// The characters allowed are unreserved in URLs (no escaping in an RTSP
// path), plain in MQTT topic levels (no / + #), plain in file names (no
// separator, never hidden, never . or ..) and have no meaning in ffmpeg's
// output patterns (no %).
func Check(id string) error {
	if id == "" || len(id) > MaxLen {
		return fmt.Errorf("camera id %q: %s", id, Rule)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		letterOrDigit := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !letterOrDigit && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("camera id %q: %s (%s at byte %d)", id, Rule, describe(id[i:]), i)
		}
	}
	return nil
}

// describe names the offending character readably (a space or a
// multi-byte character would be invisible or garbled in %c).
func describe(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	return fmt.Sprintf("%q", r)
}
