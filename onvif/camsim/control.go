package camsim

import (
	"encoding/json"
	"net/http"
	"strconv"
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
}

// serveControl is the camera's "web page": POST /camsim/tamper?pan=&tilt=&zoom=
// moves the camera directly (ignoring ONVIF limits), GET /camsim/state reports
// the state. Both need the camera's credentials (HTTP digest), like a real
// camera's web UI.
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
		st := State{ID: c.cfg.ID, Position: pos, Moving: moving, Presets: c.Presets(), Masks: len(c.Masks()),
			PanLim: [2]float64{pan.Min, pan.Max}, TiltLim: [2]float64{tilt.Min, tilt.Max}, ZoomLim: [2]float64{zoom.Min, zoom.Max}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jsonSafe(st))
	case r.URL.Path == "/camsim/tamper" && r.Method == http.MethodPost:
		if c.cfg.PTZ == nil {
			http.Error(w, "camera has no PTZ", http.StatusBadRequest)
			return
		}
		cur, _ := c.Position()
		get := func(k string, def float64) (float64, bool) {
			v := r.URL.Query().Get(k)
			if v == "" {
				return def, true
			}
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
		pan, ok1 := get("pan", cur.Pan)
		tilt, ok2 := get("tilt", cur.Tilt)
		zoom, ok3 := get("zoom", cur.Zoom)
		if !ok1 || !ok2 || !ok3 {
			http.Error(w, "pan, tilt, zoom must be numbers", http.StatusBadRequest)
			return
		}
		c.Tamper(Position{pan, tilt, zoom})
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
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
