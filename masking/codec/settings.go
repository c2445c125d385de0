package codec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Settings are the encoder's rate settings, in their own units.
type Settings struct {
	BitrateKbps int // kbit/s
	GOP         int // frames between keyframes
	FPS         int // frames per second
}

var placeholder = regexp.MustCompile(`\{[a-z_]*\}`)

// Known placeholders of an encoder string.
var placeholders = map[string]bool{"{bitrate_kbps}": true, "{bitrate_bps}": true, "{bitrate}": true, "{gop}": true, "{fps}": true}

// Elem returns the element name of an element string (its first word).
func Elem(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// CheckEncoder checks an encoder element string as a config gives it
// (empty: the table's choice). It must be one element; it must say where
// the bitrate and the GOP go, by placeholder, or they would be silently
// ignored; {bitrate} (in the element's own unit) is allowed only for an
// element of the table, whose unit is known; and it must encode c.
func CheckEncoder(s string, c Codec) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	if strings.Contains(s, "!") {
		return fmt.Errorf("one element, not a pipeline")
	}
	name := Elem(s)
	for _, p := range placeholder.FindAllString(s, -1) {
		if !placeholders[p] {
			return fmt.Errorf("%s: unknown placeholder %s (known: {bitrate_kbps}, {bitrate_bps}, {bitrate}, {gop}, {fps})", name, p)
		}
	}
	e, known := LookupEncoder(name)
	if known && e.Codec != c {
		return fmt.Errorf("%s encodes %s, the output codec is %s", name, e.Codec, c)
	}
	if strings.Contains(s, "{bitrate}") && !known {
		return fmt.Errorf("%s: {bitrate} is in the element's own unit, unknown for an element outside the table: write {bitrate_kbps} (kbit/s) or {bitrate_bps} (bit/s)", name)
	}
	if !strings.Contains(s, "{bitrate") {
		hint := "{bitrate_kbps} (kbit/s) or {bitrate_bps} (bit/s)"
		if known {
			hint = "{bitrate} (" + e.Unit.String() + " for " + name + ")"
		}
		return fmt.Errorf("%s: no bitrate placeholder: bitrate_kbps would be ignored; put %s where the element takes its bitrate", name, hint)
	}
	if !strings.Contains(s, "{gop}") {
		return fmt.Errorf("%s: no {gop} placeholder: the keyframe interval (2 s of the camera's frames) would be ignored", name)
	}
	return nil
}

// Expand substitutes s's placeholders; unit is what {bitrate} means (the
// element's own unit).
func Expand(s string, unit Unit, st Settings) string {
	bps := st.BitrateKbps * 1000
	bitrate := st.BitrateKbps
	if unit == Bps {
		bitrate = bps
	}
	return strings.NewReplacer(
		"{bitrate_kbps}", strconv.Itoa(st.BitrateKbps),
		"{bitrate_bps}", strconv.Itoa(bps),
		"{bitrate}", strconv.Itoa(bitrate),
		"{gop}", strconv.Itoa(st.GOP),
		"{fps}", strconv.Itoa(st.FPS),
	).Replace(s)
}

// EncoderString is the element string for encoder element e, or the
// custom string (a config's encoder.element) when not empty, with the
// settings substituted in the element's units.
func EncoderString(e Element, custom string, st Settings) string {
	if strings.TrimSpace(custom) == "" {
		return Expand(e.Template, e.Unit, st)
	}
	unit := Kbps
	if k, ok := LookupEncoder(Elem(custom)); ok {
		unit = k.Unit
	}
	return Expand(custom, unit, st)
}
