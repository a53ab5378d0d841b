// Softmax cross-entropy (PyTorch's CrossEntropyLoss with label smoothing,
// mean reduction) for gozoo's GPU backend. z is (n, k) float32 logits;
// labels (n) are float32 class indices, checked on the host before upload.

// row_lse returns log Σ exp(z) of one row, shifted by its max, in double.
__device__ double row_lse(const float* z, int k) {
  double mx = -__longlong_as_double(0x7ff0000000000000LL);
  for (int j = 0; j < k; j++) mx = fmax(mx, (double)z[j]);
  double s = 0.0;
  for (int j = 0; j < k; j++) s += exp((double)z[j] - mx);
  return mx + log(s);
}

// xent_rows writes each row's smoothed loss (double) into rowloss (n).
extern "C" __global__ void xent_rows(const float* __restrict__ z, const float* __restrict__ labels,
    double* __restrict__ rowloss, int n, int k, double eps) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const float* row = z + (long)i * k;
    double lse = row_lse(row, k);
    double loss = (1 - eps) * (lse - (double)row[(int)labels[i]]);
    if (eps != 0) {
      double s = 0.0;
      for (int j = 0; j < k; j++) s += (double)row[j];
      loss += eps * (lse - s / (double)k);
    }
    rowloss[i] = loss;
  }
}

// xent_mean writes the mean of rowloss (n) into loss[0] (float32); one
// thread sums in row order, as the CPU (n is a batch: small).
extern "C" __global__ void xent_mean(const double* __restrict__ rowloss, float* __restrict__ loss, int n) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += rowloss[i];
    loss[0] = (float)(s / (double)n);
  }
}

// xent_grad writes dz = g/n·(softmax(z) − ε/k − (1−ε)·onehot(label)).
extern "C" __global__ void xent_grad(const float* __restrict__ z, const float* __restrict__ labels,
    float* __restrict__ dz, int n, int k, double eps, double g) {
  double scale = g / (double)n, uniform = eps / (double)k;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const float* row = z + (long)i * k;
    double lse = row_lse(row, k);
    int label = (int)labels[i];
    for (int j = 0; j < k; j++) {
      double d = exp((double)row[j] - lse) - uniform;
      if (j == label) d -= 1 - eps;
      dz[(long)i * k + j] = (float)(scale * d);
    }
  }
}
