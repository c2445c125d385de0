package anonymise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"velo/masking"
)

// A subject copy's frames go through ffmpeg as YUV4MPEG2 (y4m): a header
// line with the size and frame rate, then "FRAME\n" and one I420 picture
// per frame. ffmpeg decodes the recorded segment into it and encodes the
// masked frames from it.

// y4mReader reads the frames of a y4m stream.
type y4mReader struct {
	br   *bufio.Reader
	W, H int
	FPS  float64
	rate string // the header's F field, e.g. "25:1"
}

func newY4MReader(r io.Reader) (*y4mReader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("y4m header: %w", err)
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "YUV4MPEG2" {
		return nil, errors.New("y4m header: not a YUV4MPEG2 stream")
	}
	y := &y4mReader{br: br}
	for _, p := range f[1:] {
		switch p[0] {
		case 'W':
			y.W, _ = strconv.Atoi(p[1:])
		case 'H':
			y.H, _ = strconv.Atoi(p[1:])
		case 'F':
			y.rate = p[1:]
			n, d, _ := strings.Cut(p[1:], ":")
			num, _ := strconv.ParseFloat(n, 64)
			den, _ := strconv.ParseFloat(d, 64)
			if den > 0 {
				y.FPS = num / den
			}
		case 'C':
			if !strings.HasPrefix(p, "C420") {
				return nil, fmt.Errorf("y4m header: colour space %s, want 4:2:0", p[1:])
			}
		}
	}
	if y.W <= 0 || y.H <= 0 || y.W%2 != 0 || y.H%2 != 0 || y.W*y.H > 4096*4096 || y.FPS <= 0 {
		return nil, fmt.Errorf("y4m header: bad size or rate %q", strings.TrimSpace(line))
	}
	return y, nil
}

// next reads the next frame into f (allocated when nil); io.EOF at the end.
func (y *y4mReader) next(f *masking.Frame) (*masking.Frame, error) {
	line, err := y.br.ReadString('\n')
	if err != nil {
		if err == io.EOF && line == "" {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("y4m frame: %w", err)
	}
	if !strings.HasPrefix(line, "FRAME") {
		return nil, errors.New("y4m frame: no FRAME marker")
	}
	if f == nil || f.W != y.W || f.H != y.H {
		f = masking.NewFrame(y.W, y.H)
	}
	if _, err := io.ReadFull(y.br, f.Data); err != nil {
		return nil, fmt.Errorf("y4m frame: %w", err)
	}
	return f, nil
}

// decodeSegment runs ffmpeg on one recorded segment fed on its standard
// input and calls fn with each frame from ss (seconds into the segment)
// for dur seconds, at size w×h when w > 0 (the first segment's; 0: as
// recorded). fn's frame is reused after it returns.
func decodeSegment(ctx context.Context, feed func(io.Writer) error, ss, dur float64, w, h int, rate string, fn func(*y4mReader, *masking.Frame) error) error {
	args := []string{"-nostdin", "-loglevel", "error", "-i", "pipe:0", "-map", "0:v:0", "-an"}
	if ss > 0 {
		args = append(args, "-ss", strconv.FormatFloat(ss, 'f', 3, 64))
	}
	args = append(args, "-t", strconv.FormatFloat(dur, 'f', 3, 64))
	if w > 0 {
		args = append(args, "-vf", fmt.Sprintf("scale=%d:%d,fps=%s", w, h, strings.Replace(rate, ":", "/", 1)))
	}
	args = append(args, "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "pipe:1")
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ffmpeg: %w", err)
	}
	fed := make(chan error, 1)
	go func() {
		err := feed(in)
		in.Close()
		fed <- err
	}()
	ferr := readFrames(out, fn)
	if ferr != nil {
		_ = cmd.Process.Kill()
	}
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	feedErr := <-fed
	switch {
	case ferr != nil:
		return ferr
	case werr != nil:
		return fmt.Errorf("ffmpeg decode: %v: %s", werr, strings.TrimSpace(stderr.String()))
	case feedErr != nil && !closedPipe(feedErr):
		return fmt.Errorf("reading the segment: %w", feedErr)
	}
	return nil
}

// closedPipe: ffmpeg stops reading once it has the range; the feed then
// fails on a closed pipe, which is no error of the segment.
func closedPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed)
}

func readFrames(r io.Reader, fn func(*y4mReader, *masking.Frame) error) error {
	y, err := newY4MReader(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil // nothing of the range in this segment
		}
		return err
	}
	var f *masking.Frame
	for {
		f, err = y.next(f)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(y, f); err != nil {
			return err
		}
	}
}

// encoder writes masked frames to an MP4 a person can play: H.264,
// yuv420p, the index at the front (faststart).
type encoder struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	stderr strings.Builder
	header bool
	w, h   int
	rate   string
}

func newEncoder(ctx context.Context, path string, w, h int, rate string) (*encoder, error) {
	e := &encoder{w: w, h: h, rate: rate}
	e.cmd = exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "yuv4mpegpipe", "-i", "pipe:0",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", "-y", path)
	var err error
	if e.in, err = e.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	e.cmd.Stderr = &e.stderr
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	return e, nil
}

// write sends one masked frame.
func (e *encoder) write(f *masking.Frame) error {
	if f.W != e.w || f.H != e.h {
		return fmt.Errorf("encoder: frame %dx%d, want %dx%d", f.W, f.H, e.w, e.h)
	}
	if !e.header {
		if _, err := fmt.Fprintf(e.in, "YUV4MPEG2 W%d H%d F%s Ip A1:1 C420jpeg\n", e.w, e.h, e.rate); err != nil {
			return e.failed(err)
		}
		e.header = true
	}
	if _, err := io.WriteString(e.in, "FRAME\n"); err != nil {
		return e.failed(err)
	}
	if _, err := e.in.Write(f.Data); err != nil {
		return e.failed(err)
	}
	return nil
}

func (e *encoder) failed(err error) error {
	e.in.Close()
	_ = e.cmd.Wait()
	return fmt.Errorf("ffmpeg encode: %v: %s", err, strings.TrimSpace(e.stderr.String()))
}

// close ends the stream and waits for the MP4 to be written whole.
func (e *encoder) close() error {
	e.in.Close()
	if err := e.cmd.Wait(); err != nil {
		return fmt.Errorf("ffmpeg encode: %v: %s", err, strings.TrimSpace(e.stderr.String()))
	}
	return nil
}
