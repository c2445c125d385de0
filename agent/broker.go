package agent

import (
	"fmt"
	"io"
	"log/slog"
	"net"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// EmbeddedBroker is the MQTT broker velo run starts when the config names
// none (the demo and a gateway without central ops). It listens on
// loopback only (Validate refuses anything else): it has no
// authentication of its own.
type EmbeddedBroker struct {
	srv  *mochi.Server
	addr string
}

// StartEmbeddedBroker listens on addr (host:port; port 0 picks one) and
// serves. A port in use is an error, not a silent fallback.
func StartEmbeddedBroker(addr string) (*EmbeddedBroker, error) {
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
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
