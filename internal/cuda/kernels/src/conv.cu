// Convolution helpers for gozoo's GPU backend: im2col/col2im and the
// layout changes around the batched GEMM. All tensors are float32, NCHW.
// Every kernel uses a grid-stride loop, so any grid size is correct.

// im2col unrolls images [0, nb) of x (nb, C, H, W) into cols
// (C·kh·kw, nb·oh·ow) with row stride ld = nb·oh·ow: row (c, i, j), column
// (n, oy, ox) holds x[n, c, oy·s − p + i, ox·s − p + j], or 0 in the padding.
extern "C" __global__ void im2col(const float* __restrict__ x, float* __restrict__ cols,
    int nb, int c, int h, int w, int kh, int kw, int s, int p, int oh, int ow) {
  long ohw = (long)oh * ow, ld = nb * ohw;
  long total = (long)c * kh * kw * ld;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    long col = t % ld, row = t / ld;
    int n = (int)(col / ohw), o = (int)(col % ohw);
    int oy = o / ow, ox = o % ow;
    int j = (int)(row % kw), i = (int)((row / kw) % kh), ci = (int)(row / ((long)kw * kh));
    int iy = oy * s - p + i, ix = ox * s - p + j;
    float v = 0.0f;
    if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = x[(((long)n * c + ci) * h + iy) * w + ix];
    cols[t] = v;
  }
}

// col2im overwrites dx (nb, C, H, W) with the sum, over every column entry
// that im2col copied from an element, of cols (C·kh·kw, nb·oh·ow). Each
// thread gathers for one element of dx, in (i, j) order: no atomics, the
// same result on every run.
extern "C" __global__ void col2im(const float* __restrict__ cols, float* __restrict__ dx,
    int nb, int c, int h, int w, int kh, int kw, int s, int p, int oh, int ow) {
  long ohw = (long)oh * ow, ld = nb * ohw;
  long total = (long)nb * c * h * w;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int ix = (int)(t % w), iy = (int)((t / w) % h), ci = (int)((t / ((long)w * h)) % c);
    int n = (int)(t / ((long)w * h * c));
    float sum = 0.0f;
    for (int i = 0; i < kh; i++) {
      int ty = iy + p - i;
      if (ty < 0 || ty % s != 0) continue;
      int oy = ty / s;
      if (oy >= oh) continue;
      for (int j = 0; j < kw; j++) {
        int tx = ix + p - j;
        if (tx < 0 || tx % s != 0) continue;
        int ox = tx / s;
        if (ox >= ow) continue;
        long row = ((long)ci * kh + i) * kw + j;
        sum += cols[row * ld + n * ohw + (long)oy * ow + ox];
      }
    }
    dx[t] = sum;
  }
}

// conv_scatter copies tmp (O, nb·ohw), the GEMM's output, into y (nb, O, ohw)
// adding bias b (O) when b is not null.
extern "C" __global__ void conv_scatter(const float* __restrict__ tmp, const float* __restrict__ b,
    float* __restrict__ y, int nb, int o, int ohw) {
  long total = (long)nb * o * ohw;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int j = (int)(t % ohw), oc = (int)((t / ohw) % o), n = (int)(t / ((long)ohw * o));
    float v = tmp[(long)oc * nb * ohw + (long)n * ohw + j];
    y[t] = b ? v + b[oc] : v;
  }
}

// conv_gather is conv_scatter's inverse without bias: dst (O, nb·ohw) from
// dy (nb, O, ohw).
extern "C" __global__ void conv_gather(const float* __restrict__ dy, float* __restrict__ dst,
    int nb, int o, int ohw) {
  long total = (long)nb * o * ohw;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    int j = (int)(t % ohw), oc = (int)((t / ohw) % o), n = (int)(t / ((long)ohw * o));
    dst[(long)oc * nb * ohw + (long)n * ohw + j] = dy[t];
  }
}

// bias_grad overwrites db (C) with the sum of dy (N, C, HW) over N and HW,
// in double. One block per channel (blockDim.x a power of two ≤ 1024); each
// thread sums a fixed strided share and a fixed tree adds the shares: no
// atomics, the same result on every run.
extern "C" __global__ void bias_grad(const float* __restrict__ dy, float* __restrict__ db,
    int n, int c, int hw) {
  __shared__ double part[1024];
  int ch = blockIdx.x;
  long m = (long)n * hw;
  double sum = 0.0;
  for (long t = threadIdx.x; t < m; t += blockDim.x) {
    long i = t / hw, j = t % hw;
    sum += (double)dy[(i * c + ch) * hw + j];
  }
  part[threadIdx.x] = sum;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[ch] = (float)part[0];
}
