package mapper

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/andybalholm/brotli"
)

// compressPayload compresses p into z (reset first) with a pooled writer and returns z's bytes.
func (m *Mapper) compressPayload(z *bytes.Buffer, p []byte) ([]byte, error) {
	z.Reset()
	w := m.writers.Get().(*brotli.Writer)
	w.Reset(z)
	_, err := w.Write(p)
	if err == nil {
		err = w.Close()
	}
	w.Reset(nil) // drop the reference to z before pooling
	m.writers.Put(w)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return z.Bytes(), nil
}

// decompressor is a pooled brotli reader with the source it reads from.
type decompressor struct {
	r   *brotli.Reader
	src bytes.Reader
}

// initialDecompressCap bounds the first allocation for decompressed data, so that a damaged length in an
// unencrypted header cannot make the mapper allocate gigabytes before the stream proves that large.
const initialDecompressCap = 64 << 10

// decompress decodes a brotli stream that must decode to exactly rawLen bytes.
//
// The brotli decoder is a translation of C code; should it ever panic on some damaged stream, that panic
// is turned into an error here, since Decode must not panic on any input.
func (m *Mapper) decompress(p []byte, rawLen int) (out []byte, err error) {
	d := m.readers.Get().(*decompressor)
	defer func() {
		if r := recover(); r != nil {
			// The reader's state is unknown: do not pool it.
			out, err = nil, fmt.Errorf("%w: brotli decoder failed: %v", ErrMalformed, r)
			return
		}
		d.src.Reset(nil)
		m.readers.Put(d)
	}()
	d.src.Reset(p)
	if err := d.r.Reset(&d.src); err != nil {
		return nil, fmt.Errorf("%w: decompress: %w", ErrMalformed, err)
	}

	out = make([]byte, 0, min(rawLen, initialDecompressCap))
	for stalled := 0; len(out) < rawLen; {
		if len(out) == cap(out) {
			out = slices.Grow(out, min(rawLen-len(out), cap(out))) // doubling, up to rawLen
		}
		n, err := d.r.Read(out[len(out):min(cap(out), rawLen)])
		out = out[:len(out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: decompress: %w", ErrMalformed, err)
		}
		if stalled++; n > 0 {
			stalled = 0
		} else if stalled > 8 {
			return nil, fmt.Errorf("%w: compressed stream makes no progress", ErrMalformed)
		}
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("%w: decompressed to %d bytes, header says %d", ErrMalformed, len(out), rawLen)
	}
	// The stream must end here: more output means the header lies, more input means junk after it.
	var one [1]byte
	for range 8 {
		n, err := d.r.Read(one[:])
		if n > 0 {
			return nil, fmt.Errorf("%w: decompressed beyond the %d bytes the header says", ErrMalformed, rawLen)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: decompress: %w", ErrMalformed, err)
		}
	}
	return nil, fmt.Errorf("%w: compressed stream does not end", ErrMalformed)
}
