package onvif

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reuseAddr sets SO_REUSEADDR and SO_REUSEPORT so several listeners (the
// agent, the simulator, other tools) can share the WS-Discovery port.
func reuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// ReuseAddrControl is reuseAddr for other packages (the simulator): a
// net.ListenConfig Control func.
func ReuseAddrControl(network, address string, c syscall.RawConn) error {
	return reuseAddr(network, address, c)
}
