package nn

// BNSaved is what BatchNorm2d's forward pass keeps for its backward pass:
// the per-channel mean and 1/sqrt(var + eps) it used (double, on the device).
type BNSaved struct {
	Mean, InvStd Tensor
	Train        bool
}

// BatchNorm2d is layers.BatchNorm2d: x is (N, C, H, W), gamma, beta,
// runMean and runVar are (C). With train true it normalises with the
// batch's statistics and updates runMean/runVar in place (momentum, unbiased
// variance); else it uses them.
func (b *Backend) BatchNorm2d(x, gamma, beta, runMean, runVar Tensor, eps, momentum float64, train bool) (Tensor, BNSaved, error) {
	n, c, h, w, err := shape4("BatchNorm2d", x)
	if err != nil {
		return Tensor{}, BNSaved{}, err
	}
	hw := h * w
	s := BNSaved{Train: train}
	free := func() { b.Free(s.Mean, s.InvStd) }
	// Double vectors: twice the bytes of a float32 (C).
	if s.Mean, err = b.Empty(2 * c); err != nil {
		return Tensor{}, s, err
	}
	if s.InvStd, err = b.Empty(2 * c); err != nil {
		free()
		return Tensor{}, s, err
	}
	if train {
		v, err := b.Empty(2 * c)
		if err != nil {
			free()
			return Tensor{}, s, err
		}
		defer b.Free(v)
		if err = b.perChannel("bn_stats", c, x.Buf, s.Mean.Buf, v.Buf, n, c, hw); err == nil {
			err = b.elementwise("bn_train_params", c, s.Mean.Buf, v.Buf, s.InvStd.Buf, runMean.Buf, runVar.Buf, c, eps, momentum, float64(n*hw))
		}
	} else {
		err = b.elementwise("bn_eval_params", c, runMean.Buf, runVar.Buf, s.Mean.Buf, s.InvStd.Buf, c, eps)
	}
	if err != nil {
		free()
		return Tensor{}, s, err
	}
	y, err := b.Empty(x.Shape...)
	if err == nil {
		err = b.elementwise("bn_forward", y.Len(), x.Buf, gamma.Buf, beta.Buf, s.Mean.Buf, s.InvStd.Buf, y.Buf, n, c, hw)
	}
	return y, s, err
}

// BatchNorm2dBackward returns dx (N, C, H, W), dgamma and dbeta (C).
func (b *Backend) BatchNorm2dBackward(x, gamma, dy Tensor, s BNSaved) (dx, dgamma, dbeta Tensor, err error) {
	n, c, h, w, err := shape4("BatchNorm2dBackward", x)
	if err != nil {
		return dx, dgamma, dbeta, err
	}
	train := 0
	if s.Train {
		train = 1
	}
	if dgamma, err = b.Empty(c); err != nil {
		return dx, dgamma, dbeta, err
	}
	if dbeta, err = b.Empty(c); err == nil {
		if dx, err = b.Empty(x.Shape...); err == nil {
			if err = b.perChannel("bn_grad_params", c, x.Buf, dy.Buf, s.Mean.Buf, s.InvStd.Buf, dgamma.Buf, dbeta.Buf, n, c, h*w); err == nil {
				err = b.elementwise("bn_grad_input", dx.Len(), x.Buf, gamma.Buf, dy.Buf, dgamma.Buf, dbeta.Buf, s.Mean.Buf, s.InvStd.Buf, dx.Buf, n, c, h*w, train)
			}
		}
	}
	if err != nil {
		b.Free(dx, dgamma, dbeta)
		return Tensor{}, Tensor{}, Tensor{}, err
	}
	return dx, dgamma, dbeta, nil
}
