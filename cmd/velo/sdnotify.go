package main

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
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

// watchdog pings systemd at half its WatchdogSec while alive() holds.
func watchdog(ctx context.Context, alive func() bool) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	t := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive() {
				_ = sdNotify("WATCHDOG=1")
			}
		}
	}
}
