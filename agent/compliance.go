package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"velo/agent/attempts"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/event"
	"velo/agent/retention"
	"velo/agent/telemetry"
	"velo/masking"
)

// openCompliance opens the audit log (recording the start and the config
// in force, with its SHA-256) and, when the site records, the sealed
// segment store.
func (a *Agent) openCompliance(cfg *config.Config, r *running) error {
	opts := cfg.AuditOptions()
	opts.Now = a.opts.Clock.Now
	// The checkpoint key is made at the first start; a key others can
	// read is refused, not used.
	signer, err := audit.LoadSigner(cfg.StateDir, cfg.Site.ID, cfg.Gateway, true)
	if err != nil {
		return err
	}
	opts.Signer = signer
	al, err := audit.Open(config.AuditDir(cfg), opts)
	if err != nil {
		return err
	}
	a.mu.Lock()
	r.audit, r.attempts = al, attempts.New(a.opts.Attempts)
	a.mu.Unlock()
	a.auditAppend(audit.Entry{Actor: "agent", Action: "agent_started", Outcome: "ok", Detail: "velo " + a.opts.Version,
		Fields: map[string]string{"config": cfg.File(), "config_sha256": fileSHA256(cfg.File())}})
	return a.openRetention(cfg, r)
}

// compliance returns the audit log, the segment store and telemetry of the
// running agent (nils outside Run).
func (a *Agent) compliance() (*audit.Log, *retention.Store, *telemetry.Telemetry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.run == nil {
		return nil, nil, nil
	}
	return a.run.audit, a.run.store, a.run.tel
}

// bursts is the running agent's count of repeated attempts from peers
// (nil outside Run: every attempt is then reported on its own).
func (a *Agent) bursts() *attempts.Aggregator {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.run == nil {
		return nil
	}
	return a.run.attempts
}

func fileSHA256(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// auditAppend writes an entry; a failure is logged and published (never
// silently lost), without recursion into the audit, and returned.
func (a *Agent) auditAppend(e audit.Entry) error {
	al, _, tel := a.compliance()
	if al == nil {
		return nil
	}
	_, err := al.Append(e)
	if err != nil {
		a.log.Error().Err(err).Str("action", e.Action).Msg("audit entry not written")
		if tel != nil {
			_, _ = tel.Event(event.Event{Kind: event.AuditFailed, Camera: e.Camera, Detail: fmt.Sprintf("%s: %v", e.Action, err), Time: time.Now().UTC()})
		}
	}
	return err
}

// auditEvent records every agent event: commands with their outcome,
// config reloads, drift, tamper, snap-back, limits, schedule changes,
// retention deletions, holds, accesses.
func (a *Agent) auditEvent(ev event.Event) error {
	if ev.Kind == event.AuditHead || ev.Kind == event.AuditFailed {
		return nil
	}
	actor := ev.Operator
	if actor == "" {
		actor = "agent"
	}
	outcome := "ok"
	switch ev.Kind {
	case event.CommandRefused, event.ConfigRejected, event.AccessDenied, event.ConsoleLoginRefused, event.ConsoleRefused:
		outcome = "refused"
	case event.CommandDuplicate:
		outcome = "duplicate"
	case event.LimitsFailed, event.RetentionError:
		outcome = "failed"
	}
	f := map[string]string{}
	if ev.Preset != "" {
		f["preset"] = ev.Preset
	}
	if ev.Verb != "" {
		f["verb"] = ev.Verb
	}
	if ev.RequestID != "" {
		f["request_id"] = ev.RequestID
	}
	if ev.Position != nil {
		f["position"] = fmt.Sprintf("pan %.4f tilt %.4f zoom %.4f", ev.Position.Pan, ev.Position.Tilt, ev.Position.Zoom)
	}
	burstFields(f, ev.Burst)
	if len(f) == 0 {
		f = nil
	}
	return a.auditAppend(audit.Entry{Time: ev.Time.UTC().Format(time.RFC3339Nano), Actor: actor, Action: string(ev.Kind), Camera: ev.Camera,
		Outcome: outcome, Reason: ev.Reason, Ref: ev.Ref, Detail: ev.Detail, Fields: f})
}

// burstFields adds a summary's figures to an audit entry's fields.
func burstFields(f map[string]string, b *event.Burst) {
	if b == nil {
		return
	}
	f["source"], f["count"] = b.Source, strconv.Itoa(b.Count)
	f["first"], f["last"] = b.First.UTC().Format(time.RFC3339Nano), b.Last.UTC().Format(time.RFC3339Nano)
	for k, list := range map[string][]string{"names": b.Names, "targets": b.Targets, "sources": b.Sources} {
		if len(list) > 0 {
			j, _ := json.Marshal(list)
			f[k] = string(j)
		}
	}
	if b.More {
		f["more"] = "true"
	}
}

// auditAccess records an operator's live view (an RTSP PLAY: the
// operator's login to the stream, one entry each) or a refused attempt,
// which is also published as an access_denied event. Refusals are what a
// hostile peer can repeat at will: the user name and stream it sent are
// bounded and escaped, and only the first attempt of a burst from its
// source is reported on its own; the rest come in one summary
// (reportBursts).
func (a *Agent) auditAccess(user, camera, remote string, ok bool) {
	if ok {
		a.auditAppend(audit.Entry{Actor: user, Action: string(event.LiveView), Camera: camera, Outcome: "ok",
			Detail: "masked live stream opened", Fields: map[string]string{"remote": remote}})
		return
	}
	user, camera = audit.Clean(user, audit.MaxFieldLen), audit.Clean(camera, audit.MaxFieldLen)
	at := attempts.Attempt{Kind: string(event.AccessDenied), Source: attempts.Source(remote), Name: user, Target: camera}
	if !a.bursts().Observe(a.opts.Clock.Now(), at) {
		return
	}
	a.emit(event.Event{Kind: event.AccessDenied, Camera: camera, Operator: user, Detail: "live stream refused to " + remote + " (wrong credentials, role, camera or schedule)"})
}

// burstWords say what a summary of each kind counts and names.
var burstWords = map[event.Kind]struct{ counts, names string }{
	event.AccessDenied:        {"refused live-stream attempts", "users"},
	event.CameraUnconfigured:  {"unconfigured devices announced", "endpoints"},
	event.ConsoleLoginRefused: {"refused console logins", "users"},
}

// reportBursts reports each summary of repeated attempts as an event of
// their kind (logged, audited, published like any), with a burst object.
func (a *Agent) reportBursts(sums []attempts.Summary) {
	for _, s := range sums {
		kind := event.Kind(s.Kind)
		ev := event.Event{Kind: kind, Time: s.Last.UTC(), Burst: &event.Burst{Source: s.Source, Count: s.Count,
			First: s.First.UTC(), Last: s.Last.UTC(), Names: s.Names, Targets: s.Targets, Sources: s.Sources, More: s.More}}
		if len(s.Names) == 1 && !s.More && (kind == event.AccessDenied || kind == event.ConsoleLoginRefused) {
			ev.Operator = s.Names[0]
		}
		if len(s.Targets) == 1 && !s.More {
			ev.Camera = s.Targets[0]
		}
		words := burstWords[kind]
		ev.Detail = fmt.Sprintf("%d %s from %s, %s to %s", s.Count, words.counts, s.Source,
			s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339))
		if s.Alone {
			ev.Detail = "after the first, reported on its own: " + ev.Detail
		}
		if len(s.Names) > 0 {
			ev.Detail += "; " + words.names + ": " + listBounded(s.Names, s.More, 256)
		}
		if len(s.Targets) > 0 && ev.Camera == "" {
			ev.Detail += "; cameras: " + listBounded(s.Targets, s.More, 256)
		}
		if len(s.Sources) > 0 {
			ev.Detail += "; sources: " + listBounded(s.Sources, s.More, 256)
		}
		a.emit(ev)
	}
}

// listBounded joins values with ", " within about max bytes, ending with
// "…" when some are left out.
func listBounded(list []string, more bool, max int) string {
	var b strings.Builder
	for i, v := range list {
		if b.Len()+len(v) > max {
			more = true
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v)
	}
	if more {
		b.WriteString(" …")
	}
	return b.String()
}

// auditLoop publishes the chain head every audit.head_interval (and at
// start), so a truncated or rewritten log is detectable centrally, and
// prunes audit files past audit.keep once an hour. Every second it
// reports the bursts of repeated attempts that are over; at the end,
// every burst still open, before the last head.
func (a *Agent) auditLoop(ctx context.Context) {
	cfg := a.cfg.Load()
	head := time.NewTicker(time.Duration(cfg.Audit.HeadInterval))
	defer head.Stop()
	bursts := time.NewTicker(time.Second)
	defer bursts.Stop()
	lastPrune := time.Time{}
	housekeep := func() {
		a.publishHead()
		if now := a.opts.Clock.Now(); now.Sub(lastPrune) > time.Hour {
			lastPrune = now
			a.pruneAudit()
		}
	}
	housekeep()
	for {
		select {
		case <-ctx.Done():
			a.reportBursts(a.bursts().Close())
			a.publishHead()
			return
		case <-bursts.C:
			a.reportBursts(a.bursts().Due(a.opts.Clock.Now()))
			a.revokeLiveViews("stream password expired or camera off its schedule")
		case <-head.C:
			housekeep()
		}
	}
}

// pruneAudit removes the audit files past audit.keep (each removal is
// itself audited).
func (a *Agent) pruneAudit() {
	al, _, _ := a.compliance()
	if removed, err := al.Prune(); err != nil {
		a.log.Error().Err(err).Msg("audit prune")
	} else if len(removed) > 0 {
		a.log.Info().Int("files", len(removed)).Msg("audit files past audit.keep removed")
	}
}

func (a *Agent) publishHead() {
	al, _, tel := a.compliance()
	if al == nil || tel == nil {
		return
	}
	// A signed checkpoint of the head goes in the log first; the head
	// published is that checkpoint, with the public key to pin.
	h, err := al.Checkpoint()
	if err != nil {
		a.log.Error().Err(err).Msg("audit checkpoint")
		return
	}
	if _, err := tel.Event(event.Event{Kind: event.AuditHead, AuditSeq: h.Seq, AuditHash: h.Hash, AuditKey: al.Signer().PublicHex(), Time: time.Now().UTC()}); err != nil {
		a.log.Error().Err(err).Msg("audit head not saved to the outbox")
	}
}

// scheduleActive reports whether camera id may emit video now (G-4.3).
func (a *Agent) scheduleActive(id string) bool {
	cam := a.cfg.Load().Camera(id)
	return cam == nil || cam.Schedule.Active(a.scheduleNow())
}

func (a *Agent) scheduleNow() time.Time { return a.opts.Clock.Now() }

// openRetention opens the sealed-segment store when the site records.
func (a *Agent) openRetention(cfg *config.Config, r *running) error {
	if cfg.Outputs.RecordDir == "" {
		return nil
	}
	st, note, err := retention.Open(cfg.Outputs.RecordDir, cfg.StateDir, a.opts.Clock)
	if err != nil {
		return err
	}
	a.mu.Lock()
	r.store = st
	a.mu.Unlock()
	switch {
	case note == "":
	case strings.HasPrefix(note, "downtime of"):
		a.log.Info().Msg(note)
	default:
		a.emit(event.Event{Kind: event.ClockUntrusted, Detail: note})
	}
	a.sealPending() // plaintext left by a crash
	return nil
}

// retentionLoop seals completed segments every 5 s and sweeps expired
// ones every 30 s (G-3.4: deletion is automatic).
func (a *Agent) retentionLoop(ctx context.Context) {
	_, st, _ := a.compliance()
	if st == nil {
		return
	}
	seal := time.NewTicker(5 * time.Second)
	defer seal.Stop()
	sweep := time.NewTicker(a.opts.SweepInterval)
	defer sweep.Stop()
	var sweepErr string // reported once, not every sweep
	a.sweep(&sweepErr)
	for {
		select {
		case <-ctx.Done():
			return
		case <-seal.C:
			a.sealPending()
		case <-sweep.C:
			a.sweep(&sweepErr)
		}
	}
}

// sweep deletes expired segments; a sweep that could not run (unreadable
// holds) is reported when it starts failing or fails differently.
func (a *Agent) sweep(lastErr *string) {
	_, st, _ := a.compliance()
	if st == nil {
		return
	}
	cfg := a.cfg.Load()
	deleted, err := st.Sweep(func(camera string) time.Duration {
		if cam := cfg.Camera(camera); cam != nil {
			return time.Duration(cam.Record.Retention)
		}
		return config.DefaultRetention
	})
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != "" && msg != *lastErr {
		a.emit(event.Event{Kind: event.RetentionError, Detail: msg})
	}
	*lastErr = msg
	for _, d := range deleted {
		if d.Err != nil {
			a.emit(event.Event{Kind: event.RetentionError, Camera: d.Segment.Camera, Detail: fmt.Sprintf("deleting %s: %v", d.Segment.Name, d.Err)})
			continue
		}
		a.emit(event.Event{Kind: event.RetentionDel, Camera: d.Segment.Camera, Ref: d.Segment.Name,
			Detail: fmt.Sprintf("segment %s (from %s) deleted at age %v: key destroyed, bytes overwritten", d.Segment.Name, d.Segment.Start.Format(time.RFC3339), d.Age.Round(time.Second))})
	}
}

// sealPending encrypts every plaintext segment in the record folder except
// the one a running recorder is still writing (its camera's newest).
func (a *Agent) sealPending() {
	_, st, _ := a.compliance()
	a.mu.Lock()
	recording := maps.Clone(a.recs)
	a.mu.Unlock()
	if st == nil {
		return
	}
	cfg := a.cfg.Load()
	files, _ := filepath.Glob(filepath.Join(cfg.Outputs.RecordDir, "*.mkv"))
	sort.Strings(files) // per camera, by start time
	type seg struct {
		path  string
		start time.Time
	}
	byCam := map[string][]seg{}
	for _, f := range files {
		cam, start, err := masking.SegmentStart(f)
		if err != nil {
			continue
		}
		byCam[cam] = append(byCam[cam], seg{f, start})
	}
	for cam, segs := range byCam {
		if recording[cam] {
			segs = segs[:len(segs)-1] // still being written
		}
		maxLen := 5 * time.Minute
		if c := cfg.Camera(cam); c != nil && c.Record.Segment != 0 {
			maxLen = time.Duration(c.Record.Segment)
		}
		for i, g := range segs {
			// How long it recorded: to the next segment's start, else to
			// its last write; never more than the segment length.
			length := maxLen
			if i+1 < len(segs) {
				length = min(length, segs[i+1].start.Sub(g.start))
			} else if fi, err := os.Stat(g.path); err == nil {
				length = min(length, fi.ModTime().Sub(g.start))
			}
			length = max(length, 0)
			if _, err := st.Seal(g.path, cam, g.start, length); err != nil {
				a.emit(event.Event{Kind: event.RetentionError, Camera: cam, Detail: fmt.Sprintf("sealing %s: %v", filepath.Base(g.path), err)})
			}
		}
	}
}

// waitSchedule returns at once (true) while the camera's hours are
// active; otherwise it reports the camera scheduled-off (state and
// event), waits without touching the camera until its hours start, and
// reports it back on. False when ctx ends.
func (a *Agent) waitSchedule(ctx context.Context, cam *config.CameraConfig) bool {
	if a.scheduleActive(cam.ID) {
		return true
	}
	next := cam.Schedule.NextActive(a.scheduleNow(), 8*24*time.Hour)
	detail := "outside the active hours (G-4.3): no video at all"
	if next != nil {
		detail += "; on again at " + next.In(cam.Schedule.Location()).Format("2006-01-02 15:04 MST")
	}
	a.update(cam.ID, func(s *CameraState) {
		s.ScheduledOff, s.NextOn = true, next
		s.Online, s.Approved, s.Error, s.Position = false, false, "", nil
	})
	a.emit(event.Event{Kind: event.ScheduledOff, Camera: cam.ID, Detail: detail})
	t := time.NewTicker(a.opts.ScheduleTick)
	defer t.Stop()
	for !a.scheduleActive(cam.ID) {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	a.update(cam.ID, func(s *CameraState) { s.ScheduledOff, s.NextOn = false, nil })
	a.emit(event.Event{Kind: event.ScheduledOn, Camera: cam.ID, Detail: "active hours started"})
	return true
}
