package camsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// State is the camera state reported by GET /camsim/state.
type State struct {
	ID       string         `json:"id"`
	Position Position       `json:"position"`
	Moving   bool           `json:"moving"`
	Presets  []PresetConfig `json:"presets"`
	PanLim   [2]float64     `json:"pan_limits"`
	TiltLim  [2]float64     `json:"tilt_limits"`
	ZoomLim  [2]float64     `json:"zoom_limits"`
	Masks    int            `json:"masks"`
	View     Tamper         `json:"view_tamper"`
}

// serveControl is the camera's "web page": POST /camsim/tamper changes the
// camera as a person on site would (moves it ignoring ONVIF limits, or
// bumps, turns, zooms, flips, covers or defocuses its picture), GET
// /camsim/state reports the state. Both need the camera's credentials
// (HTTP digest), like a real camera's web UI.
func (c *Camera) serveControl(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Auth != AuthNone {
		h := r.Header.Get("Authorization")
		if h == "" || !c.checkDigest(h, r) {
			c.challenge(w, false)
			return
		}
	}
	switch {
	case r.URL.Path == "/camsim/state" && r.Method == http.MethodGet:
		pos, moving := c.Position()
		pan, tilt, zoom := c.Limits()
		st := State{ID: c.cfg.ID, Position: pos, Moving: moving, Presets: c.Presets(), Masks: len(c.Masks()), View: c.ViewTamper(),
			PanLim: [2]float64{pan.Min, pan.Max}, TiltLim: [2]float64{tilt.Min, tilt.Max}, ZoomLim: [2]float64{zoom.Min, zoom.Max}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jsonSafe(st))
	case r.URL.Path == "/camsim/tamper" && r.Method == http.MethodPost:
		c.serveTamper(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveTamper applies POST /camsim/tamper: a PTZ move (pan, tilt, zoom;
// omitted axes stay) and/or a view tamper (omitted parameters stay, reset
// first clears them). Nothing is applied unless every parameter is valid.
func (c *Camera) serveTamper(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	viewParams := []string{"dx", "dy", "rotate", "zoom_factor", "flip", "cover", "defocus", "reset"}
	viewAsked := slices.ContainsFunc(viewParams, q.Has)
	moveAsked := q.Has("pan") || q.Has("tilt") || q.Has("zoom") || !viewAsked
	if moveAsked && c.cfg.PTZ == nil {
		http.Error(w, "camera has no PTZ", http.StatusBadRequest)
		return
	}
	cur, _ := c.Position()
	pos, err := parsePosition(q, cur)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	view, err := parseViewTamper(q, c.ViewTamper())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if moveAsked {
		c.Tamper(pos)
	}
	if viewAsked {
		c.TamperView(view)
	}
	w.WriteHeader(http.StatusNoContent)
}

// parsePosition reads pan, tilt and zoom; an omitted axis keeps cur's.
func parsePosition(q url.Values, cur Position) (Position, error) {
	p := cur
	for _, a := range []struct {
		key string
		dst *float64
	}{{"pan", &p.Pan}, {"tilt", &p.Tilt}, {"zoom", &p.Zoom}} {
		if err := numParam(q, a.key, math.Inf(-1), math.Inf(1), a.dst); err != nil {
			return cur, fmt.Errorf("pan, tilt, zoom must be numbers")
		}
	}
	return p, nil
}

// parseViewTamper reads the view parameters over cur: dx, dy (fractions of
// the frame, -1..1), rotate (degrees, -180..180), zoom_factor (0.25..8, 1
// none), flip (none, h, v, hv), cover (0..1), defocus (blur radius px,
// 0..50), reset (clear the view tamper before the others apply).
func parseViewTamper(q url.Values, cur Tamper) (Tamper, error) {
	t := cur
	if q.Has("reset") {
		if on, err := strconv.ParseBool(cmp.Or(q.Get("reset"), "true")); err != nil {
			return cur, fmt.Errorf("reset must be true or false")
		} else if on {
			t = Tamper{}
		}
	}
	for _, p := range []struct {
		key    string
		lo, hi float64
		dst    *float64
	}{{"dx", -1, 1, &t.ShiftX}, {"dy", -1, 1, &t.ShiftY}, {"rotate", -180, 180, &t.RotateDeg},
		{"zoom_factor", 0.25, 8, &t.Zoom}, {"cover", 0, 1, &t.Cover}} {
		if err := numParam(q, p.key, p.lo, p.hi, p.dst); err != nil {
			return cur, err
		}
	}
	blur := float64(t.Blur)
	if err := numParam(q, "defocus", 0, 50, &blur); err != nil {
		return cur, err
	}
	t.Blur = int(blur)
	if q.Has("flip") {
		f := q.Get("flip")
		if !slices.Contains([]string{"none", "h", "v", "hv"}, f) {
			return cur, fmt.Errorf("flip must be none, h, v or hv")
		}
		t.FlipH, t.FlipV = strings.Contains(f, "h"), strings.Contains(f, "v")
	}
	return t, nil
}

// numParam sets *dst from q[key] when present: a number in lo..hi.
func numParam(q url.Values, key string, lo, hi float64, dst *float64) error {
	if !q.Has(key) {
		return nil
	}
	v, err := strconv.ParseFloat(q.Get(key), 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		return fmt.Errorf("%s must be a number in %g..%g", key, lo, hi)
	}
	*dst = v
	return nil
}

// jsonSafe replaces infinite limits (not representable in JSON) by ±1e9.
func jsonSafe(s State) State {
	fix := func(a *[2]float64) {
		for i := range a {
			if a[i] > 1e9 {
				a[i] = 1e9
			}
			if a[i] < -1e9 {
				a[i] = -1e9
			}
		}
	}
	fix(&s.PanLim)
	fix(&s.TiltLim)
	fix(&s.ZoomLim)
	return s
}
