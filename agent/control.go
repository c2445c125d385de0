package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"velo/agent/commands"
	"velo/agent/config"
	"velo/agent/event"
	"velo/agent/telemetry"
)

// commandLoop executes commands one at a time, in arrival order, and
// publishes each reply; every outcome is an event.
func (a *Agent) commandLoop(ctx context.Context) {
	a.mu.Lock()
	store := a.run.outbox
	a.mu.Unlock()
	h := &commands.Handler{Config: a.cfg.Load, Store: store, Gateway: gateway{a}, Now: a.opts.Clock.Now}
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-a.cmds:
			if c.release != nil {
				c.release()
			}
			a.reply(h.Handle(ctx, c.verb, c.payload), c.payload)
		}
	}
}

// admission decides, before a command takes one of the queue's slots,
// whether it deserves one: its signature must verify (commands.Check), and
// each operator holds at most maxQueuedPerOperator slots. Anything else is
// refused without a reply or an audit entry of its own: counted, and
// logged once per burst. So a flood of unsigned junk, or one operator's
// flood, cannot push a genuine command out of the queue.
type admission struct {
	a       *Agent
	refused *telemetry.Refusals

	mu     sync.Mutex
	queued map[string]int // operator → commands in the queue
}

// maxQueuedPerOperator is one operator's share of the command queue.
const maxQueuedPerOperator = 4

func newAdmission(a *Agent) *admission {
	return &admission{a: a, queued: map[string]int{},
		refused: telemetry.NewRefusals(a.log, "commands refused before the queue (no valid signature, or over the sender's share)")}
}

// queue is telemetry's OnCommand: it admits or refuses one command.
func (ad *admission) queue(verb string, payload []byte) {
	op, why := ad.signer(verb, payload)
	if op == "" {
		ad.refused.Add(why)
		return
	}
	ad.mu.Lock()
	full := ad.queued[op] >= maxQueuedPerOperator
	if !full {
		ad.queued[op]++
	}
	ad.mu.Unlock()
	if full {
		ad.refused.Add(fmt.Sprintf("operator over its %d queued commands", maxQueuedPerOperator))
		return
	}
	select {
	case ad.a.cmds <- rawCommand{verb: verb, payload: payload, release: func() { ad.release(op) }}:
	default:
		ad.release(op)
		ad.refused.Add("command queue full")
	}
}

func (ad *admission) release(op string) {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	if ad.queued[op]--; ad.queued[op] <= 0 {
		delete(ad.queued, op)
	}
}

// recentlyIssued bounds how old a command may be and still be admitted
// for a refusal of its own: the longest validity (10 min) and a margin.
const recentlyIssued = 15 * time.Minute

// signer is the operator whose valid signature payload carries, or "" and
// why not. A command signed by an operator but out of its time window, or
// beyond their role, is admitted: the handler refuses it with its reason,
// audited and replied to. (Checked a second time at the command's own
// issue time, which only the time window depends on.)
func (ad *admission) signer(verb string, payload []byte) (op, why string) {
	if len(payload) > commands.MaxCommandBytes {
		return "", "oversized"
	}
	var c commands.Command
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if dec.Decode(&c) != nil {
		return "", "malformed"
	}
	cfg := ad.a.cfg.Load()
	now := ad.a.opts.Clock.Now()
	who, err := commands.Check(cfg, verb, &c, now)
	if who == nil {
		// Recently expired (a replay of an old command is not): admitted
		// to be refused with its reason.
		if issued, perr := time.Parse(time.RFC3339Nano, c.IssuedAt); perr == nil && now.Sub(issued) < recentlyIssued {
			who, _ = commands.Check(cfg, verb, &c, issued)
		}
	}
	if op := cfg.Operator(c.Operator); who == nil && op != nil && op.Credential() != nil && op.Credential().CommandPublicKey() == nil {
		// An operator whose credential file is too old to verify any
		// signature: admitted (within their share of the queue) so the
		// refusal tells them to re-run velo passwd.
		return op.Name, ""
	}
	if who == nil {
		why = "refused"
		if err != nil {
			why = err.Error()
		}
		if len(why) > 60 {
			why = why[:60] + "…"
		}
		return "", why
	}
	return who.Name, ""
}

// commandReply is a reply as published: the handler's reply and the
// SHA-256 of the command payload it answers, so the sender can tell the
// answer to its own command from any other.
type commandReply struct {
	commands.Reply
	CommandSHA256 string `json:"command_sha256"`
}

// reply reports a command's outcome as an event and publishes the reply.
func (a *Agent) reply(r commands.Reply, payload []byte) {
	kind := event.CommandExecuted
	switch r.Status {
	case commands.StatusRefused:
		kind = event.CommandRefused
	case commands.StatusDuplicate:
		kind = event.CommandDuplicate
	}
	a.emit(event.Event{Kind: kind, Verb: r.Verb, Operator: r.Operator, RequestID: r.RequestID, Detail: strings.TrimSpace(r.Status + " " + r.Reason)})
	if tel := a.telemetry(); tel != nil {
		sum := sha256.Sum256(payload)
		if _, err := tel.Publish("cmd/"+r.Verb+"/reply", commandReply{Reply: r, CommandSHA256: hex.EncodeToString(sum[:])}); err != nil {
			a.log.Error().Err(err).Msg("command reply not saved")
		}
	}
}

// gateway is what commands may do to the agent (commands.Gateway).
type gateway struct{ a *Agent }

// ApplyPreset moves a connected camera's PTZ lock to an approved preset.
func (g gateway) ApplyPreset(ctx context.Context, camera, preset string) (any, error) {
	g.a.mu.Lock()
	w := g.a.workers[camera]
	g.a.mu.Unlock()
	if w != nil {
		w.mu.Lock()
		lock := w.lock
		w.mu.Unlock()
		if lock != nil {
			if err := lock.Apply(ctx, preset); err != nil {
				return nil, err
			}
			return map[string]any{"camera": camera, "preset": preset, "position": lock.LastPosition()}, nil
		}
	}
	return nil, fmt.Errorf("camera %q is not connected", camera)
}

// Reload applies the config file again.
func (g gateway) Reload() (any, error) { return g.a.Reload() }

// RefreshState republishes every camera state.
func (g gateway) RefreshState() {
	a := g.a
	a.mu.Lock()
	ids := make([]string, 0, len(a.states))
	for id := range a.states {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	for _, id := range ids {
		a.update(id, func(*CameraState) {})
	}
	if tel := a.telemetry(); tel != nil {
		tel.Refresh()
	}
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
// restart of velo (site, gateway, broker, state_dir, outputs, audit) refuse
// the reload, and so does a view repositioned without a new approval
// (ER-4.7). Safe from any goroutine (SIGHUP, config/reload).
func (a *Agent) Reload() (ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	old := a.cfg.Load()
	nc, res, changes, err := a.planReload(old)
	if err != nil {
		a.emit(event.Event{Kind: event.ConfigRejected, Detail: err.Error() + " (the running config is unchanged)"})
		return ReloadResult{}, err
	}
	for _, id := range slices.Concat(res.Removed, res.Restarted) {
		a.stopWorker(id)
	}
	a.cfg.Store(nc)
	a.recordReload(nc, res)
	a.mu.Lock()
	for _, id := range res.Removed {
		delete(a.states, id)
	}
	for _, id := range slices.Concat(res.Restarted, res.Added) {
		a.startWorkerLocked(nc.Camera(id))
	}
	a.mu.Unlock()
	if tel := a.telemetry(); tel != nil {
		for _, id := range res.Removed {
			tel.ForgetState(id)
		}
	}
	a.emitViewChanges(changes, "by a reload")
	a.revokeLiveViews("after a reload")
	a.emit(event.Event{Kind: event.ConfigApplied, Detail: fmt.Sprintf("added %v, removed %v, restarted %v, unchanged %v", res.Added, res.Removed, res.Restarted, res.Unchanged)})
	return res, nil
}

// planReload loads the file again and says what applying it changes; an
// error refuses the reload.
func (a *Agent) planReload(old *config.Config) (*config.Config, ReloadResult, []config.ViewChange, error) {
	var res ReloadResult
	nc, err := config.Load(old.File())
	if err == nil {
		err = restartNeeded(old, nc)
	}
	a.mu.Lock()
	serving := a.servingLocked()
	a.mu.Unlock()
	if err == nil && !serving {
		err = errors.New("agent not running")
	}
	if err != nil {
		return nil, res, nil, err
	}
	for _, oc := range old.Cameras {
		switch ncam := nc.Camera(oc.ID); {
		case ncam == nil:
			res.Removed = append(res.Removed, oc.ID)
		case !config.SameCamera(&oc, ncam):
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
	var changes []config.ViewChange
	for _, id := range slices.Concat(res.Restarted, res.Added) {
		ch, err := a.reloadViewChanges(old, nc.Camera(id))
		if err != nil {
			return nil, res, nil, fmt.Errorf("config: %s: %w", nc.File(), err)
		}
		changes = append(changes, ch...)
	}
	return nc, res, changes, nil
}

// restartNeeded refuses a reload that changes what only a restart applies.
func restartNeeded(old, nc *config.Config) error {
	var diff []string
	for _, f := range []struct {
		name string
		same bool
	}{{"site.id", old.Site.ID == nc.Site.ID}, {"gateway", old.Gateway == nc.Gateway}, {"state_dir", old.StateDir == nc.StateDir},
		{"broker", reflect.DeepEqual(old.Broker, nc.Broker)}, {"outputs", old.Outputs == nc.Outputs}, {"audit", old.Audit == nc.Audit}, {"verify", reflect.DeepEqual(old.Verify, nc.Verify)},
		{"console", old.Console == nc.Console}, {"telemetry", old.Telemetry == nc.Telemetry}, {"metrics", reflect.DeepEqual(old.Metrics, nc.Metrics)}} {
		if !f.same {
			diff = append(diff, f.name)
		}
	}
	if len(diff) > 0 {
		return fmt.Errorf("config: %s: %s changed: restart velo to apply", nc.File(), strings.Join(diff, ", "))
	}
	return nil
}

// statsLoop is the housekeeping beat Health watches (the systemd
// watchdog), every 5 s. The frame counters and rates are on the stats
// topic (statsPublishLoop), not in the retained state.
func (a *Agent) statsLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		a.beat.Store(now.UnixNano())
		a.sampleRates(now)
		a.refreshVideo()
	}
}

// refreshVideo puts each camera's video path (codec and decoder in,
// encoder and codec out, once the encoder opened) in its state. The
// retained state is published only when the path changed.
func (a *Agent) refreshVideo() {
	for _, w := range a.workerList() {
		a.refreshWorkerVideo(w)
	}
}

// refreshWorkerVideo puts one camera's video path in its state (also
// called the moment its encoder opens, so a consumer sees the whole path
// with the first frames, not at the next beat).
func (a *Agent) refreshWorkerVideo(w *worker) {
	w.mu.Lock()
	pl := w.pl
	w.mu.Unlock()
	if pl == nil {
		return
	}
	vp := pl.Path()
	if vp.Decoder == "" && vp.Encoder == "" {
		return
	}
	a.update(w.cam.ID, func(s *CameraState) {
		s.Video = &VideoState{Codec: string(vp.Codec), Decoder: vp.Decoder, Backend: string(vp.Backend),
			Encoder: vp.Encoder, OutCodec: vp.OutCodec, Fallback: vp.Fallback}
	})
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
	if !a.servingLocked() {
		return false
	}
	a.startWorkerLocked(cam)
	return true
}

// servingLocked reports whether Run has started the cameras and not yet
// been asked to stop (a.mu held).
func (a *Agent) servingLocked() bool {
	return a.run != nil && a.run.serving && a.run.ctx.Err() == nil
}
