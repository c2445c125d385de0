// Package agent will hold Velo's supervisor and policy: configuration,
// per-camera workers, the PTZ lock, MQTT telemetry and commands, audit and
// retention. It is not built yet (see README, Status).
package agent
