package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"velo/agent/config"
)

// RequestStore remembers executed request ids until they expire
// (telemetry.Outbox is one).
type RequestStore interface {
	SeenRequest(id string, expires time.Time, result []byte) (bool, []byte, error)
	SetRequestResult(id string, result []byte) error
}

// Handler authenticates, authorises, de-duplicates and executes commands.
// Handle is called from one goroutine at a time (commands run in arrival
// order).
type Handler struct {
	Config  func() *config.Config // the config in force
	Store   RequestStore
	Gateway Gateway
	Now     func() time.Time // default time.Now
}

// Handle runs one command and returns the reply to publish on
// cmd/<verb>/reply. A request id executes at most once: it is recorded
// durably before the command runs, so neither a QoS 1 redelivery nor a
// replay runs it again.
func (h *Handler) Handle(ctx context.Context, verb string, payload []byte) Reply {
	reply := Reply{Verb: verb}
	finish := func(o outcome) Reply {
		reply.Status, reply.Reason = o.status, o.reason
		if o.result != nil {
			reply.Result, _ = json.Marshal(o.result)
		}
		return reply
	}
	if len(payload) > MaxCommandBytes {
		return finish(outcome{status: StatusRefused, reason: fmt.Sprintf("payload over %d bytes", MaxCommandBytes)})
	}
	var c Command
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return finish(outcome{status: StatusRefused, reason: "malformed command: " + err.Error()})
	}
	reply.RequestID, reply.Operator = c.RequestID, c.Operator
	return finish(h.run(ctx, verb, c))
}

// run checks, de-duplicates and executes a well-formed command.
func (h *Handler) run(ctx context.Context, verb string, c Command) outcome {
	cfg := h.Config()
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if _, err := Check(cfg, verb, &c, now()); err != nil {
		return outcome{status: StatusRefused, reason: err.Error()}
	}
	expires, _ := time.Parse(time.RFC3339Nano, c.ExpiresAt)
	seen, prev, err := h.Store.SeenRequest(c.RequestID, expires, nil)
	if err != nil {
		return outcome{status: StatusFailed, reason: "request id store: " + err.Error()}
	}
	if seen {
		var r any
		if len(prev) > 0 {
			r = json.RawMessage(prev)
		}
		return outcome{status: StatusDuplicate, reason: "request id already executed", result: r}
	}
	o := verbs[verb].exec(ctx, h.Gateway, cfg, c.Args)
	if b, err := json.Marshal(map[string]any{"status": o.status, "reason": o.reason}); err == nil {
		_ = h.Store.SetRequestResult(c.RequestID, b)
	}
	return o
}
