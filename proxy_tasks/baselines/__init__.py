"""Optimizers that are not programs, trained and tuned exactly like programs: optax AdamW and
Lion, the hypergradient optimizers (:mod:`.hypergrad`) and the learned LSTM optimizer
(:mod:`.l2l`, meta-trained by ``optevo.proxy_tasks.l2l_train`` with the engines' pieces).
:mod:`.specs` names each as one line of text (``optax:KIND k=v ...``), the form in which a
baseline travels to workers."""
