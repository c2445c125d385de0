package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"velo/agent/audit"
)

// Compliance event kinds.
const (
	EventAuditHead      EventKind = "audit_head"
	EventAccessDenied   EventKind = "access_denied"
	EventLiveView       EventKind = "live_view"
	EventScheduledOff   EventKind = "scheduled_off"
	EventScheduledOn    EventKind = "scheduled_on"
	EventRetentionDel   EventKind = "retention_deleted"
	EventHoldSet        EventKind = "hold_set"
	EventHoldReleased   EventKind = "hold_released"
	EventRecordingRead  EventKind = "recording_access"
	EventExport         EventKind = "export"
	EventAuditFailed    EventKind = "audit_failed"
	EventRetentionError EventKind = "retention_error"
)

// AuditDir is where a config's audit log lives.
func AuditDir(cfg *Config) string { return filepath.Join(cfg.StateDir, "audit") }

// OpenAudit opens the config's audit log.
func OpenAudit(cfg *Config) (*audit.Log, error) {
	return audit.Open(AuditDir(cfg), audit.Options{Keep: time.Duration(cfg.Audit.Keep), MaxFileBytes: int64(cfg.Audit.MaxFileMB) << 20})
}

// auditStart records the start and the config in force (its SHA-256).
func (a *Agent) auditStart(cfg *Config) {
	a.auditAppend(audit.Entry{Actor: "agent", Action: "agent_started", Outcome: "ok", Detail: "velo " + a.Version,
		Fields: map[string]string{"config": cfg.file, "config_sha256": fileSHA256(cfg.file)}})
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
// silently lost), without recursion into the audit.
func (a *Agent) auditAppend(e audit.Entry) {
	a.mu.Lock()
	al, tel := a.audit, a.tel
	a.mu.Unlock()
	if al == nil {
		return
	}
	if _, err := al.Append(e); err != nil {
		a.log.Error().Err(err).Str("action", e.Action).Msg("audit entry not written")
		if tel != nil {
			_, _ = tel.Event(Event{Kind: EventAuditFailed, Camera: e.Camera, Detail: fmt.Sprintf("%s: %v", e.Action, err), Time: time.Now().UTC()})
		}
	}
}

// auditEvent records every agent event: commands with their outcome,
// config reloads, drift, tamper, snap-back, limits, schedule changes,
// retention deletions, holds, accesses.
func (a *Agent) auditEvent(ev Event) {
	if ev.Kind == EventAuditHead || ev.Kind == EventAuditFailed {
		return
	}
	actor := ev.Operator
	if actor == "" {
		actor = "agent"
	}
	outcome := "ok"
	switch ev.Kind {
	case EventCommandRefused, EventConfigRejected, EventAccessDenied:
		outcome = "refused"
	case EventCommandDuplicate:
		outcome = "duplicate"
	case EventLimitsFailed, EventRetentionError:
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
	if len(f) == 0 {
		f = nil
	}
	a.auditAppend(audit.Entry{Time: ev.Time.UTC().Format(time.RFC3339Nano), Actor: actor, Action: string(ev.Kind), Camera: ev.Camera,
		Outcome: outcome, Reason: ev.Reason, Ref: ev.Ref, Detail: ev.Detail, Fields: f})
}

// auditAccess records an operator's live view (an RTSP PLAY: the
// operator's login to the stream) or a refused attempt, which is also
// published as an access_denied event.
func (a *Agent) auditAccess(user, camera, remote string, ok bool) {
	if ok {
		a.auditAppend(audit.Entry{Actor: user, Action: string(EventLiveView), Camera: camera, Outcome: "ok",
			Detail: "masked live stream opened", Fields: map[string]string{"remote": remote}})
		return
	}
	a.event(Event{Kind: EventAccessDenied, Camera: camera, Operator: user, Detail: "live stream refused to " + remote + " (wrong credentials, role, camera or schedule)"})
}

// auditLoop publishes the chain head every audit.head_interval (and at
// start), so a truncated or rewritten log is detectable centrally, and
// prunes audit files past audit.keep once an hour.
func (a *Agent) auditLoop(ctx context.Context) {
	cfg := a.cfg.Load()
	t := time.NewTicker(time.Duration(cfg.Audit.HeadInterval))
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		a.publishHead()
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			a.mu.Lock()
			al := a.audit
			a.mu.Unlock()
			if removed, err := al.Prune(); err != nil {
				a.log.Error().Err(err).Msg("audit prune")
			} else if len(removed) > 0 {
				a.log.Info().Int("files", len(removed)).Msg("audit files past audit.keep removed")
			}
		}
		select {
		case <-ctx.Done():
			a.publishHead()
			return
		case <-t.C:
		}
	}
}

func (a *Agent) publishHead() {
	a.mu.Lock()
	al, tel := a.audit, a.tel
	a.mu.Unlock()
	if al == nil || tel == nil {
		return
	}
	h, err := al.Head()
	if err != nil {
		a.log.Error().Err(err).Msg("audit head")
		return
	}
	if _, err := tel.Event(Event{Kind: EventAuditHead, AuditSeq: h.Seq, AuditHash: h.Hash, Time: time.Now().UTC()}); err != nil {
		a.log.Error().Err(err).Msg("audit head not saved to the outbox")
	}
}

// scheduleActive reports whether camera id may emit video now (G-4.3).
func (a *Agent) scheduleActive(id string) bool {
	cam := a.cfg.Load().Camera(id)
	return cam == nil || cam.Schedule.Active(time.Now())
}
