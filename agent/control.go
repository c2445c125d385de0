package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// commandLoop executes commands one at a time, in arrival order.
func (a *Agent) commandLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-a.cmds:
			a.handleCommand(ctx, c.verb, c.payload)
		}
	}
}

// handleCommand authenticates, authorises, de-duplicates and executes one
// command, then replies on cmd/<verb>/reply. Every outcome is an event.
// A request id executes at most once: it is recorded durably before the
// command runs, so neither a QoS 1 redelivery nor a replay runs it again.
func (a *Agent) handleCommand(ctx context.Context, verb string, payload []byte) {
	var c Command
	reply := Reply{Verb: verb}
	finish := func(status, reason string, result any) {
		reply.Status, reply.Reason = status, reason
		if result != nil {
			reply.Result, _ = json.Marshal(result)
		}
		kind := EventCommandExecuted
		switch status {
		case "refused":
			kind = EventCommandRefused
		case "duplicate":
			kind = EventCommandDuplicate
		}
		a.event(Event{Kind: kind, Verb: verb, Operator: c.Operator, RequestID: c.RequestID, Detail: strings.TrimSpace(status + " " + reason)})
		a.mu.Lock()
		tel := a.tel
		a.mu.Unlock()
		if tel != nil {
			if _, err := tel.Publish("cmd/"+verb+"/reply", reply); err != nil {
				a.log.Error().Err(err).Msg("command reply not saved")
			}
		}
	}
	if len(payload) > MaxCommandBytes {
		finish("refused", fmt.Sprintf("payload over %d bytes", MaxCommandBytes), nil)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		c = Command{}
		finish("refused", "malformed command: "+err.Error(), nil)
		return
	}
	reply.RequestID, reply.Operator = c.RequestID, c.Operator
	cfg := a.cfg.Load()
	var pa presetArgs
	if verb == "preset/apply" {
		_ = json.Unmarshal(c.Args, &pa) // used for the camera scope; checked strictly below
	}
	now := time.Now()
	if _, err := checkCommand(cfg, verb, &c, pa.Camera, now); err != nil {
		finish("refused", err.Error(), nil)
		return
	}
	expires, _ := time.Parse(time.RFC3339Nano, c.ExpiresAt)
	seen, prev, err := a.outbox.SeenRequest(c.RequestID, expires, nil)
	if err != nil {
		finish("failed", "request id store: "+err.Error(), nil)
		return
	}
	if seen {
		var r any
		if len(prev) > 0 {
			r = json.RawMessage(prev)
		}
		finish("duplicate", "request id already executed", r)
		return
	}
	status, reason, result := a.execute(ctx, cfg, verb, c)
	if b, err := json.Marshal(map[string]any{"status": status, "reason": reason}); err == nil {
		_ = a.outbox.SetRequestResult(c.RequestID, b)
	}
	finish(status, reason, result)
}

// execute runs an authorised command: status ok, failed or refused.
func (a *Agent) execute(ctx context.Context, cfg *Config, verb string, c Command) (string, string, any) {
	switch verb {
	case "preset/apply":
		var pa presetArgs
		if err := decodeArgs(c.Args, &pa); err != nil {
			return "refused", err.Error(), nil
		}
		cam := cfg.Camera(pa.Camera)
		if cam == nil {
			return "refused", fmt.Sprintf("no camera %q", pa.Camera), nil
		}
		if !slices.ContainsFunc(cam.Presets, func(p PresetConfig) bool { return p.Token == pa.Preset }) {
			return "refused", fmt.Sprintf("camera %q preset %q: %v", cam.ID, pa.Preset, ErrNotApproved), nil
		}
		a.mu.Lock()
		w := a.workers[cam.ID]
		a.mu.Unlock()
		var lock *Lock
		if w != nil {
			w.mu.Lock()
			lock = w.lock
			w.mu.Unlock()
		}
		if lock == nil {
			return "failed", fmt.Sprintf("camera %q is not connected", cam.ID), nil
		}
		actx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		if err := lock.Apply(actx, pa.Preset); err != nil {
			return "failed", err.Error(), nil
		}
		return "ok", "", map[string]any{"camera": cam.ID, "preset": pa.Preset, "position": lock.LastPosition()}
	case "config/reload":
		res, err := a.Reload()
		if err != nil {
			return "failed", err.Error(), nil
		}
		return "ok", "", res
	case "state/refresh":
		a.mu.Lock()
		ids := make([]string, 0, len(a.states))
		for id := range a.states {
			ids = append(ids, id)
		}
		a.mu.Unlock()
		for _, id := range ids {
			a.update(id, func(*CameraState) {})
		}
		a.mu.Lock()
		tel := a.tel
		a.mu.Unlock()
		if tel != nil {
			tel.Refresh()
		}
		return "ok", "", nil
	}
	return "refused", "unknown verb", nil
}

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Added     []string `json:"added,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	Restarted []string `json:"restarted,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
}

// Reload re-reads the config file and applies it: validated first (an
// invalid file changes nothing and is reported as config_rejected), then
// the cameras whose settings changed are restarted, removed ones stopped
// and new ones started; operators change at once. Settings that need a
// restart of velo (site, gateway, broker, state_dir, outputs) refuse the
// reload. Safe from any goroutine (SIGHUP, config/reload).
func (a *Agent) Reload() (ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	var res ReloadResult
	old := a.cfg.Load()
	nc, err := Load(old.file)
	if err == nil {
		err = restartNeeded(old, nc)
	}
	a.mu.Lock()
	running := a.runCtx != nil && a.runCtx.Err() == nil
	a.mu.Unlock()
	if err == nil && !running {
		err = errors.New("agent not running")
	}
	if err != nil {
		a.event(Event{Kind: EventConfigRejected, Detail: err.Error() + " (the running config is unchanged)"})
		return res, err
	}
	for _, oc := range old.Cameras {
		ncam := nc.Camera(oc.ID)
		switch {
		case ncam == nil:
			res.Removed = append(res.Removed, oc.ID)
		case !reflect.DeepEqual(oc.comparable(), ncam.comparable()):
			res.Restarted = append(res.Restarted, oc.ID)
		default:
			res.Unchanged = append(res.Unchanged, oc.ID)
		}
	}
	for _, ncam := range nc.Cameras {
		if old.Camera(ncam.ID) == nil {
			res.Added = append(res.Added, ncam.ID)
		}
	}
	var changes []viewChange
	for _, id := range slices.Concat(res.Restarted, res.Added) {
		ch, err := viewChanges(old.Camera(id), nc.Camera(id))
		if err != nil {
			err = fmt.Errorf("config: %s: %w", nc.file, err)
			a.event(Event{Kind: EventConfigRejected, Detail: err.Error() + " (the running config is unchanged)"})
			return ReloadResult{}, err
		}
		changes = append(changes, ch...)
	}
	for _, id := range slices.Concat(res.Removed, res.Restarted) {
		a.stopWorker(id)
	}
	a.cfg.Store(nc)
	a.mu.Lock()
	for _, id := range res.Removed {
		delete(a.states, id)
	}
	for _, id := range slices.Concat(res.Restarted, res.Added) {
		a.startWorkerLocked(nc.Camera(id))
	}
	tel := a.tel
	a.mu.Unlock()
	if tel != nil {
		for _, id := range res.Removed {
			tel.ForgetState(id)
		}
	}
	for _, ch := range changes {
		a.event(Event{Kind: EventViewChanged, Camera: ch.Camera, Preset: ch.Preset, Ref: ch.Approval.Document,
			Detail: fmt.Sprintf("view %s; approved by %s on %s (%s)", ch.What, ch.Approval.By, ch.Approval.Date, ch.Approval.Document)})
	}
	a.event(Event{Kind: EventConfigApplied, Detail: fmt.Sprintf("added %v, removed %v, restarted %v, unchanged %v", res.Added, res.Removed, res.Restarted, res.Unchanged)})
	return res, nil
}

// restartNeeded refuses a reload that changes what only a restart applies.
func restartNeeded(old, nc *Config) error {
	var diff []string
	if old.Site.ID != nc.Site.ID {
		diff = append(diff, "site.id")
	}
	if old.Gateway != nc.Gateway {
		diff = append(diff, "gateway")
	}
	if old.StateDir != nc.StateDir {
		diff = append(diff, "state_dir")
	}
	if !reflect.DeepEqual(old.Broker, nc.Broker) {
		diff = append(diff, "broker")
	}
	if old.Outputs != nc.Outputs {
		diff = append(diff, "outputs")
	}
	if old.Audit != nc.Audit {
		diff = append(diff, "audit")
	}
	if len(diff) > 0 {
		return fmt.Errorf("config: %s: %s changed: restart velo to apply", nc.file, strings.Join(diff, ", "))
	}
	return nil
}

// statsLoop refreshes each camera's frame rates and counters every 5 s.
func (a *Agent) statsLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.beat.Store(time.Now().UnixNano())
		a.mu.Lock()
		ws := make([]*worker, 0, len(a.workers))
		for _, w := range a.workers {
			ws = append(ws, w)
		}
		a.mu.Unlock()
		for _, w := range ws {
			w.mu.Lock()
			pl := w.pl
			if pl == nil {
				w.mu.Unlock()
				continue
			}
			st := pl.Stats()
			now := time.Now()
			dt := now.Sub(w.lastAt).Seconds()
			fin, fout := float64(st.In-w.lastIn)/dt, float64(st.Out-w.lastOut)/dt
			w.lastIn, w.lastOut, w.lastAt = st.In, st.Out, now
			w.mu.Unlock()
			a.update(w.cam.ID, func(s *CameraState) {
				s.FPSIn, s.FPSOut = round1(fin), round1(fout)
				s.Dropped, s.Blanked = st.Dropped, st.Blanked
			})
		}
	}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// restartCamera stops a camera's worker and starts it again (a full
// reconnect: ONVIF session, PTZ lock, pipeline).
func (a *Agent) restartCamera(id string) bool {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cam := a.cfg.Load().Camera(id)
	if cam == nil {
		return false
	}
	a.stopWorker(id)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runCtx == nil || a.runCtx.Err() != nil {
		return false
	}
	a.startWorkerLocked(cam)
	return true
}
