"""The Python API: the CLI's commands as functions and one :class:`Run` object.

::

    import linearcast

    run = linearcast.fit(model="elinformer", data=df, protocol="pems", epochs=5)   # train
    run.evaluate()["metrics"]["overall"]["MAE"]                                      # evaluate
    run.predict()                      # [S, T_out, N, C], data units: every test window # predict
    run.forecast(df.tail(288), h=12)   # unique_id, ds, y_hat: the next 12 steps        # forecast
    run.forecast(df.tail(288), level=90)   # + y_hat_lo_90, y_hat_hi_90                 # intervals
    run.export_onnx("model.onnx")                                                    # export
    run = linearcast.load_run("runs/elinformer-dataframe-20250101-120000")

``data`` is a dataset path (any format the readers take), ``"synthetic"``, a pandas DataFrame
(wide: a DatetimeIndex or time column × one column per series; long: ``unique_id, ds, y``) or
a NumPy array ``[T, N]`` / ``[T, N, C]`` (time from ``freq_minutes=`` / ``start=``). A run
trained on an in-memory object records only its shape (``"<DataFrame [T, N]>"``) in
``config.json``; the :class:`Run` returned by :func:`fit` keeps the object for ``evaluate`` and
``predict``, a reloaded one needs the data passed again.

The package, by concern: :mod:`~linearcast.api.training` (:func:`fit`),
:mod:`~linearcast.api.run` (:class:`Run`, :func:`load_run`) and
:mod:`~linearcast.api.options` (how keyword arguments split into config fields and the data
options of an in-memory frame).
"""

from linearcast.api.run import Run, load_run
from linearcast.api.training import fit, interactive_session

__all__ = ["Run", "fit", "interactive_session", "load_run"]
