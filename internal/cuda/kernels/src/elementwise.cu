// Elementwise kernels of gozoo's GPU backend: ReLU, dropout and Linear's
// bias. float32; grid-stride loops, so any grid size is correct.

// relu sets y = max(x, 0) (NaN stays NaN, as PyTorch); n elements.
extern "C" __global__ void relu(const float* __restrict__ x, float* __restrict__ y, long n) {
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < n; t += (long)gridDim.x * blockDim.x) {
    float v = x[t];
    y[t] = v > 0.0f || v != v ? v : 0.0f;
  }
}

// relu_grad sets dx = dy where y > 0, else 0 (the gradient at 0 is 0).
extern "C" __global__ void relu_grad(const float* __restrict__ y, const float* __restrict__ dy,
    float* __restrict__ dx, long n) {
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < n; t += (long)gridDim.x * blockDim.x) {
    dx[t] = y[t] > 0.0f ? dy[t] : 0.0f;
  }
}

// dropout sets out = in·scale where keep is non-zero, else 0. keep (one
// byte per element) is drawn on the CPU from the layer's PCG stream and
// copied, so the GPU path keeps exactly the CPU's mask. Serves forward (in =
// x) and backward (in = dy).
extern "C" __global__ void dropout(const float* __restrict__ in, const unsigned char* __restrict__ keep,
    float* __restrict__ out, float scale, long n) {
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < n; t += (long)gridDim.x * blockDim.x) {
    out[t] = keep[t] ? in[t] * scale : 0.0f;
  }
}

// add_bias_rows adds b (k) to every row of y (n, k).
extern "C" __global__ void add_bias_rows(float* __restrict__ y, const float* __restrict__ b, int n, int k) {
  long total = (long)n * k;
  for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
    y[t] += b[t % k];
  }
}

// sum_rows overwrites db (k) with the column sums of dy (n, k), each one
// summed by one thread in row order, in double (deterministic).
extern "C" __global__ void sum_rows(const float* __restrict__ dy, float* __restrict__ db, int n, int k) {
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < k; j += gridDim.x * blockDim.x) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)dy[(long)i * k + j];
    db[j] = (float)s;
  }
}
