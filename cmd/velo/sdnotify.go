package main

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

// sdNotify sends a state ("READY=1", "WATCHDOG=1", "STOPPING=1") to
// systemd when velo runs as a Type=notify service; a no-op otherwise.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract namespace
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	// A notify socket nobody reads (its queue full) must never hang velo,
	// at shutdown least of all.
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = c.Write([]byte(state))
	return err
}

// watchdog pings systemd at half its WatchdogSec while health() finds
// nothing wrong, and logs when it stops and starts again: a velo whose
// frame path is wedged stops pinging and systemd restarts it.
func watchdog(ctx context.Context, health func() error, log zerolog.Logger) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	t := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := health()
		switch {
		case err == nil && last != "":
			log.Info().Msg("healthy again: pinging the systemd watchdog")
			last = ""
		case err != nil && err.Error() != last:
			log.Error().Err(err).Msg("unhealthy: not pinging the systemd watchdog (systemd restarts velo if this lasts)")
			last = err.Error()
		}
		if err == nil {
			_ = sdNotify("WATCHDOG=1")
		}
	}
}
