// Package agent is Velo's supervisor: it wires one gateway together and
// owns every goroutine. Per camera a worker connects (agent/camera), checks
// the camera's identity, locks its PTZ (agent/ptzlock), runs the masking
// pipeline into the masked RTSP relay and, where configured, a recorder;
// a failing camera never stops the others. Every event goes through one
// funnel (emit): the log, the audit log (agent/audit) and MQTT
// (agent/telemetry). Signed commands (agent/commands) act on it through a
// small Gateway interface; reloads swap the config (agent/config) and
// restart only the cameras that changed; the retention loops seal and
// delete recordings (agent/retention).
//
// Files: agent.go (the Agent, its state and the event funnel), run.go
// (start and orderly stop), worker.go (a camera's worker and its
// connection), stages.go (the PTZ lock, pipeline and recorder stages of a
// connection), control.go
// (commands, reload, stats), compliance.go (audit, retention, schedules),
// discovery.go (unconfigured cameras on the network).
package agent
