// Package agent is Velo's supervisor and policy: the site configuration
// (loaded once, validated with file/line errors), one worker per camera
// (identity check, masking pipeline, relay), and the PTZ lock that keeps a
// camera on its approved preset and blanks its output while it is not.
// MQTT telemetry, audit and retention are still to come (see README).
package agent
