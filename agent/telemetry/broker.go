package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"
)

// EmbeddedBroker is the MQTT broker velo run starts when the config names
// none (the demo and a gateway without central ops). It listens on
// loopback only (the config refuses anything else): it has no
// authentication of its own. Close stops it.
type EmbeddedBroker struct {
	srv  *mochi.Server
	addr string
}

// StartEmbeddedBroker listens on addr (host:port; port 0 picks one) and
// serves; the broker's own messages go to log (scoped "component=broker").
// A port in use is an error, not a silent fallback.
func StartEmbeddedBroker(addr string, log zerolog.Logger) (*EmbeddedBroker, error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("embedded broker: %q is not a loopback host:port", addr)
	}
	ln, err := net.Listen("tcp", addr) // bind here so "in use" is reported now
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	real := ln.Addr().String()
	ln.Close()
	blog := log.With().Str("component", "broker").Logger()
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(zerologHandler{log: blog})})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "velo", Address: real})); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &EmbeddedBroker{srv: srv, addr: real}, nil
}

// URL is the broker's tcp:// URL.
func (b *EmbeddedBroker) URL() string { return "tcp://" + b.addr }

// Close stops the broker.
func (b *EmbeddedBroker) Close() error { return b.srv.Close() }

// zerologHandler lets mochi's slog logging go to Velo's zerolog logger, so
// the gateway has one log format. mochi's info chatter (client connects)
// is debug here; warnings and errors keep their level.
type zerologHandler struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func (h zerologHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.GetLevel() <= zerologLevel(l)
}

func (h zerologHandler) Handle(_ context.Context, r slog.Record) error {
	e := h.log.WithLevel(zerologLevel(r.Level))
	add := func(a slog.Attr) bool {
		e = e.Str(a.Key, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	e.Msg(r.Message)
	return nil
}

func (h zerologHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return h
}

func (h zerologHandler) WithGroup(string) slog.Handler { return h }

func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	}
	return zerolog.DebugLevel
}
