package sessiontoken

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"testing"
)

// derOf is the DER encoding encoding/asn1 gives R and S: what
// crypto/ecdsa's ecdsa.Verify hands to ecdsa.VerifyASN1.
func derOf(t testing.TB, sig []byte) []byte {
	t.Helper()
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// FuzzDERSignature holds appendDERSignature to encoding/asn1's encoding of
// R and S, and to refusing a zero R or S as ecdsa.Verify does.
func FuzzDERSignature(f *testing.F) {
	ff := bytes.Repeat([]byte{0xff}, 32)
	zero := make([]byte, 32)
	low := append(make([]byte, 31), 1)
	high := append([]byte{0x80}, make([]byte, 31)...)
	mid := append(make([]byte, 5), bytes.Repeat([]byte{0x7f}, 27)...)
	for _, r := range [][]byte{ff, zero, low, high, mid} {
		for _, s := range [][]byte{ff, zero, low, high, mid} {
			f.Add(append(append([]byte{}, r...), s...))
		}
	}
	f.Fuzz(func(t *testing.T, sig []byte) {
		if len(sig) != es256SignatureSize {
			return
		}
		got, ok := appendDERSignature(nil, sig)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if want := r.Sign() > 0 && s.Sign() > 0; ok != want {
			t.Fatalf("appendDERSignature(%x) ok = %v, want %v", sig, ok, want)
		}
		if !ok {
			return
		}
		if want := derOf(t, sig); !bytes.Equal(got, want) {
			t.Fatalf("appendDERSignature(%x) = %x, want %x", sig, got, want)
		}
		if len(got) > derSignatureMax {
			t.Fatalf("appendDERSignature(%x) is %d bytes, more than %d", sig, len(got), derSignatureMax)
		}
	})
}

// TestVerifyAsECDSAVerify: verify accepts and refuses what ecdsa.Verify
// does with R and S read as big-endian integers.
func TestVerifyAsECDSAVerify(t *testing.T) {
	t.Parallel()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("signing input"))
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	n := priv.Curve.Params().N
	raw := func(r, s *big.Int) []byte {
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
	tests := map[string][]byte{
		"valid":          raw(r, s),
		"valid, N - s":   raw(r, new(big.Int).Sub(n, s)),
		"R + 1":          raw(new(big.Int).Add(r, big.NewInt(1)), s),
		"zero R":         raw(new(big.Int), s),
		"zero S":         raw(r, new(big.Int)),
		"S = N":          raw(r, n),
		"R = N - 1":      raw(new(big.Int).Sub(n, big.NewInt(1)), s),
		"all ones":       bytes.Repeat([]byte{0xff}, 64),
		"small R and S":  raw(big.NewInt(1), big.NewInt(0x80)),
		"S + N overflow": raw(r, new(big.Int).Add(s, n).Mod(new(big.Int).Add(s, n), new(big.Int).Lsh(big.NewInt(1), 256))),
	}
	for name, sig := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := ecdsa.Verify(&priv.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
			tok := &compactJWS{signature: sig}
			if got := tok.verify(&priv.PublicKey, &digest); got != want {
				t.Errorf("verify = %v, ecdsa.Verify = %v", got, want)
			}
		})
	}
}
