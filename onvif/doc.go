// Package onvif is Velo's ONVIF client: transport (timeouts, size limits,
// SOAP faults as typed errors), authentication (WS-Security with a
// per-camera clock offset, HTTP digest MD5/SHA-256), the Device, Media,
// Media2 (privacy masks) and PTZ calls Velo uses, and WS-Discovery
// (multicast, unicast, Hello/Bye) with a credential allow-list.
//
// A *Client talks to one camera; it is safe for concurrent use and owns no
// goroutines. Every call takes a context and is bounded by Config.Timeout.
// This package imports neither gocv nor MQTT (see docs/onvif.md).
package onvif
