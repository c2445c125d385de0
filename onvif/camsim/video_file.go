package camsim

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
)

// encodeFile streams the camera's Source file instead of a scene: ffmpeg
// reads it in real time, looped, and publishes main (Width×Height at FPS)
// and sub (640×360) like the rendered scene.
func (v *video) encodeFile(ctx context.Context) error {
	cfg := v.cam.cfg
	pub := v.rtsp.publishURL
	gop := fmt.Sprint(cfg.FPS * 2)
	if cfg.GOPFrames > 0 {
		gop = fmt.Sprint(cfg.GOPFrames)
	}
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", gop, "-bf", "0", "-pix_fmt", "yuv420p"}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", cfg.Source,
		"-map", "0:v", "-vf", fmt.Sprintf("fps=%d,scale=%d:%d", cfg.FPS, cfg.Width, cfg.Height)}
	args = append(args, x264...)
	args = append(args, "-b:v", "4M", "-f", "rtsp", "-rtsp_transport", "tcp", pub(profMain),
		"-map", "0:v", "-vf", fmt.Sprintf("fps=%d,scale=640:360", cfg.FPS))
	args = append(args, x264...)
	args = append(args, "-b:v", "512k", "-f", "rtsp", "-rtsp_transport", "tcp", pub(profSub))
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg (source %s) exited: %v: %s", cfg.Source, err, v.ffmpegOutput(&stderr))
	}
	return fmt.Errorf("ffmpeg (source %s) ended: %s", cfg.Source, v.ffmpegOutput(&stderr))
}
