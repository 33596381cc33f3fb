"""Offline check (docs/results.md, run 27): do score-aware (anisotropic) PQ codes help L2 search on GloVe-100 under L2?

Trains PQ50x4 with faiss on 65 536 base rows, encodes every base vector plainly and with the anisotropic loss
(eta = weight of the error parallel to x, 3 coordinate-descent sweeps over the plain codes), then for the first 1 000
queries ranks the whole base by an estimate (||q - x^||^2, or ||x||^2 - 2<q, x^> with the exact norm), re-ranks the
top R exactly and prints recall@10 for R = 10, 20, 40, 80. Needs numpy and faiss; about 5 minutes on 2 cores:

    PYTHONPATH=/work/peers/native-avx2 /usr/bin/python3 bench/ivf/aniso_l2_offline.py [DATA]

DATA (default /tmp/glove100-l2) is a directory made by bench/ivf/glove_l2.py.
"""
import numpy as np, faiss, sys, time
def fvecs(p):
    a=np.fromfile(p,dtype='int32'); d=a[0]; return a.reshape(-1,d+1)[:,1:].view('float32').copy()
def ivecs(p):
    a=np.fromfile(p,dtype='int32'); d=a[0]; return a.reshape(-1,d+1)[:,1:].copy()
D=sys.argv[1] if len(sys.argv) > 1 else '/tmp/glove100-l2'
xb=fvecs(D+'/base.fvecs'); xq=fvecs(D+'/query.fvecs')[:1000]; gt=ivecs(D+'/gt.ivecs')[:1000,:10]
n,d=xb.shape; M=50; ds=d//M
rng=np.random.default_rng(1)
pq=faiss.ProductQuantizer(d,M,4); pq.train(xb[rng.choice(n,65536,replace=False)])
C=faiss.vector_to_array(pq.centroids).reshape(M,16,ds)
# encode manually (plain): nearest per subspace
xs=xb.reshape(n,M,ds)
def plain():
    out=np.empty((n,M),dtype=np.int64)
    for m in range(M):
        dd=((xs[:,m,None,:]-C[m][None])**2).sum(-1); out[:,m]=dd.argmin(1)
    return out
def decode(cd):
    return np.stack([C[m][cd[:,m]] for m in range(M)],1).reshape(n,d)
def aniso(cd,eta,iters=3):
    cd=cd.copy(); xn2=(xb**2).sum(1)
    for it in range(iters):
        xh=decode(cd); e=xb-xh
        for m in range(M):
            sl=slice(m*ds,(m+1)*ds)
            # remove current contribution
            e_wo=e.copy(); e_wo[:,sl]=xb[:,sl]  # error if subspace m code removed: x_sl - 0 -> we add candidate later
            par_wo=(e*xb).sum(1)-(e[:,sl]*xb[:,sl]).sum(1)  # <e,x> excluding sl
            perp_base=(e**2).sum(1)-(e[:,sl]**2).sum(1)     # ||e||^2 excluding sl
            best=None;bestl=None
            for k in range(16):
                es=xb[:,sl]-C[m][k][None]
                tot=perp_base+(es**2).sum(1); par=par_wo+(es*xb[:,sl]).sum(1)
                par2=par**2/xn2
                loss=eta*par2+(tot-par2)
                if best is None: best=loss;bestl=np.zeros(n,dtype=np.int64)
                else:
                    b=loss<best; best=np.where(b,loss,best); bestl=np.where(b,k,bestl)
            cd[:,m]=bestl; e[:,sl]=xb[:,sl]-C[m][bestl]
    return cd
def evaluate(xh,mode,label):
    xn2=(xb**2).sum(1); xhn2=(xh**2).sum(1)
    rec={R:0 for R in (10,20,40,80)}
    for i in range(0,len(xq),200):
        q=xq[i:i+200]; ip=q@xh.T
        est = (xn2 if mode=='exact' else xhn2)[None]-2*ip
        top=np.argpartition(est,80,axis=1)[:,:80]
        te=np.take_along_axis(est,top,1); order=np.argsort(te,1); top=np.take_along_axis(top,order,1)
        for R in rec:
            cand=top[:,:R]; xd=((xb[cand]-q[:,None])**2).sum(-1); o=np.argsort(xd,1)[:,:10]; res=np.take_along_axis(cand,o,1)
            rec[R]+=sum(len(set(res[j])&set(gt[i+j])) for j in range(len(q)))
    print(label, {R:round(v/(10*len(xq)),4) for R,v in rec.items()}, flush=True)
cp=plain(); xp=decode(cp)
evaluate(xp,'plain','plain codes, ||q-xh||^2')
evaluate(xp,'exact','plain codes, exact norm')
for eta in [2,4,8]:
    ca=aniso(cp,eta); xa=decode(ca)
    evaluate(xa,'exact',f'aniso eta={eta}, exact norm')
    evaluate(xa,'plain',f'aniso eta={eta}, ||q-xh||^2')
