"""``engine.cuda`` as ``torch.cuda``: on a CPU-only machine, on real CuPy (skipped without a GPU) and on the fake."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import backend


@pytest.fixture
def no_cuda():
    """CUDA as on a machine without CuPy: the backend sees no device."""
    previous = backend._TEST_MODULE
    real = backend._real_cupy
    backend._use_array_module_for_tests(None)
    backend._real_cupy = lambda: None
    try:
        yield
    finally:
        backend._real_cupy = real
        backend._use_array_module_for_tests(previous)


def test_without_cuda_it_behaves_as_a_cpu_only_torch_build(no_cuda):
    c = engine.cuda
    assert c.is_available() is False and c.device_count() == 0 and c.is_bf16_supported() is False
    assert c.memory_allocated() == 0 and c.max_memory_allocated() == 0 and c.memory_reserved() == 0
    assert c.get_rng_state_all() == []
    c.manual_seed(1)
    c.manual_seed_all(1)
    c.empty_cache()
    for call in (c.current_device, c.synchronize, c.get_device_name, c.get_device_properties, c.Stream,
                 lambda: c.Event(enable_timing=True), c.CUDAGraph, c.get_rng_state, c.mem_get_info,
                 c.current_stream, c.initial_seed):
        with pytest.raises(AssertionError, match="CUDA is not available"):
            call()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        engine.ones(2, device="cuda")



@pytest.mark.gpu
def test_device_queries(cuda_backend):
    c = engine.cuda
    props = c.get_device_properties(0)
    assert c.get_device_name() == props.name == c.get_device_name("cuda:0")
    assert props.total_memory > 0 and props.multi_processor_count >= 1
    assert c.get_device_capability() == (props.major, props.minor)
    assert c.is_bf16_supported() == (props.major >= 8 or True)
    assert c.current_device() == 0
    c.set_device(0)
    with c.device(0) as d:
        assert d.idx == 0 and c.current_device() == 0
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        c.get_device_properties(c.device_count())
    with pytest.raises(ValueError, match="Expected a cuda device"):
        c.get_device_properties("cpu")
    free, total = c.mem_get_info()
    assert 0 <= free <= total


@pytest.mark.gpu
def test_streams_events_and_timing(cuda_backend):
    c = engine.cuda
    s = c.Stream()
    assert c.current_stream() == c.default_stream() and s != c.default_stream()
    x = engine.ones(64, 64, device="cuda")
    start, end = c.Event(enable_timing=True), c.Event(enable_timing=True)
    with c.stream(s):
        assert c.current_stream() == s
        start.record()
        y = x @ x
        end.record()
    c.current_stream().wait_stream(s)
    end.synchronize()
    assert start.elapsed_time(end) >= 0.0 and s.query() and end.query()
    assert float(y.sum().cpu()) == 64.0 ** 3
    with pytest.raises(RuntimeError, match="enable_timing=True"):
        c.Event().elapsed_time(end)
    with pytest.raises(RuntimeError, match="recorded"):
        c.Event(enable_timing=True).elapsed_time(end)
    with c.stream(None):
        assert c.current_stream() == c.default_stream()
    c.synchronize()


@pytest.mark.gpu
def test_memory_statistics_follow_allocations(cuda_backend):
    c = engine.cuda
    c.reset_peak_memory_stats()
    before = c.memory_allocated()
    x = engine.empty(1 << 18, device="cuda")  # 1 MiB of float32
    assert c.memory_allocated() - before >= 1 << 20
    peak = c.max_memory_allocated()
    del x
    assert c.memory_allocated() - before < 1 << 20 and c.max_memory_allocated() == peak >= before + (1 << 20)
    assert c.memory_reserved() >= c.memory_allocated() and c.max_memory_reserved() >= c.memory_reserved()
    c.empty_cache()
    c.reset_peak_memory_stats()
    assert c.max_memory_allocated() == c.memory_allocated()
    assert "Allocated memory" in c.memory_summary() and c.memory_stats()["allocated_bytes.all.current"] >= 0


@pytest.mark.gpu
def test_cuda_graph_replays_on_the_static_tensors(cuda_backend):
    c = engine.cuda
    g = c.CUDAGraph()
    static_x = engine.zeros(8, device="cuda")
    assert not c.is_current_stream_capturing()
    with c.graph(g, pool=c.graph_pool_handle()):
        assert c.is_current_stream_capturing()
        static_y = (static_x * 2 + 1).relu().sum()
    assert not c.is_current_stream_capturing()
    static_x.copy_(engine.arange(8.0))
    g.replay()
    assert float(static_y.cpu()) == float(sum(2 * i + 1 for i in range(8)))
    static_x.copy_(-engine.ones(8))
    g.replay()
    assert float(static_y.cpu()) == 0.0
    with pytest.raises(RuntimeError, match="non-default stream"):
        c.CUDAGraph().capture_begin()
    with pytest.raises(RuntimeError, match="without a captured graph"):
        c.CUDAGraph().replay()
    assert g.pool() is not None


@pytest.mark.gpu
def test_a_host_copy_inside_capture_fails_as_on_a_gpu(cuda_backend):
    if cuda_backend.__name__ != "fake_cupy":
        pytest.skip("the fake's check; real CUDA reports cudaErrorStreamCaptureUnsupported itself")
    x = engine.ones(4, device="cuda")
    with pytest.raises(RuntimeError, match="capturing"), engine.cuda.graph(engine.cuda.CUDAGraph()):
        (x * 2).sum().item()


@pytest.mark.gpu
def test_amp_aliases(cuda_backend):
    with engine.cuda.amp.autocast(dtype=engine.bfloat16):
        y = engine.ones(2, 3, device="cuda") @ engine.ones(3, 2, device="cuda")
    assert y.dtype is engine.bfloat16 and engine.is_autocast_enabled("cuda") is False
    scaler = engine.cuda.amp.GradScaler(init_scale=4.0)
    assert scaler.is_enabled() and scaler.get_scale() == 4.0


@pytest.mark.gpu
def test_numpy_conversion_of_cuda_tensors_is_refused_as_in_torch(cuda_backend):
    t = engine.ones(3, device="cuda")
    for convert in (np.asarray, np.array, lambda x: x.numpy()):
        with pytest.raises(TypeError, match=r"can't convert cuda:0 device type tensor to numpy\. Use Tensor\.cpu"):
            convert(t)
    assert np.asarray(t.cpu()).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.gpu
def test_nvml_readings_map_cuda_indices_to_nvml_ones(cuda_backend, monkeypatch):
    import sys
    import types

    seen = []
    nvml = types.ModuleType("pynvml")
    nvml.NVML_TEMPERATURE_GPU, nvml.NVML_CLOCK_SM = 0, 1
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetHandleByIndex = lambda i: seen.append(i) or i
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=12)
    nvml.nvmlDeviceGetTemperature = lambda h, sensor: 64
    nvml.nvmlDeviceGetPowerUsage = lambda h: 350_000
    nvml.nvmlDeviceGetClockInfo = lambda h, kind: 1980
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    c = engine.cuda
    assert (c.utilization(), c.memory_usage(), c.temperature(), c.power_draw(), c.clock_rate()) == \
        (87, 12, 64, 350_000, 1980)
    assert set(seen) == {3}  # CUDA device 0 is the machine's GPU 3
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(ModuleNotFoundError, match="pynvml"):
        c.utilization()


def test_the_torch_cuda_extras_without_cuda(no_cuda):
    c = engine.cuda
    assert c.get_arch_list() == [] and c.get_gencode_flags() == "" and c.is_tf32_supported() is False
    assert c.default_generators == () and c.memory_cached() == 0 and c.max_memory_cached() == 0
    assert c.memory_stats_as_nested_dict() == {} and c.has_half is True and c.has_magma is False
    assert c.nccl.is_available([]) is False
    with pytest.raises(RuntimeError, match="NCCL is not available"):
        c.nccl.version()
    for call in (c.cudart, c.get_per_process_memory_fraction, c.reset_accumulated_memory_stats,
                 lambda: c.can_device_access_peer(0, 1), c.profiler.start, lambda: c.get_stream_from_external(0)):
        with pytest.raises(AssertionError, match="CUDA is not available"):
            call()
    for call in (lambda: c.FloatTensor([1.0]), lambda: c.IntTensor(2)):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            call()
    assert isinstance(c.CudaError(2), RuntimeError) and "(2)" in str(c.CudaError(2))
    c.check_error(c.cudaStatus.SUCCESS)
    with pytest.raises(c.CudaError, match=r"\(34\)") as info:
        c.check_error(c.cudaStatus.ERROR_NOT_READY)
    assert info.value.code == 34
    assert c.random.manual_seed is c.manual_seed and c.random.get_rng_state_all() == []


def test_nvtx_ranges_nest_and_report_their_depth():
    nvtx = engine.cuda.nvtx
    assert nvtx.range_pop() == -1  # nothing open
    assert nvtx.range_push("outer") == 0 and nvtx.range_push("inner") == 1
    assert nvtx.range_pop() == 1 and nvtx.range_pop() == 0 and nvtx.range_pop() == -1
    with nvtx.range("step {}", 3):
        assert nvtx.range_push("x") == 1
        nvtx.range_pop()
    assert nvtx.range_pop() == -1
    first, second = nvtx.range_start("a"), nvtx.range_start("b")
    assert first != second
    nvtx.range_end(first)
    nvtx.mark("here")


@pytest.mark.gpu
def test_legacy_cuda_tensor_types(cuda_backend):
    c = engine.cuda
    t = c.FloatTensor([1.0, 2.0])
    assert t.device == engine.device("cuda", 0) and t.dtype is engine.float32
    assert isinstance(t, c.FloatTensor) and not isinstance(t, engine.FloatTensor)
    assert not isinstance(t.cpu(), c.FloatTensor) and not isinstance(t, c.DoubleTensor)
    assert c.LongTensor(2, 3).shape == (2, 3) and c.LongTensor(2, 3).dtype is engine.int64
    moved = c.DoubleTensor(engine.ones(2))
    assert isinstance(moved, c.DoubleTensor) and engine.FloatTensor(t).device.type == "cuda"  # CPU type: dtype only
    for kind, dtype in ((c.HalfTensor, engine.float16), (c.BFloat16Tensor, engine.bfloat16),
                        (c.BoolTensor, engine.bool), (c.ByteTensor, engine.uint8), (c.CharTensor, engine.int8),
                        (c.ShortTensor, engine.int16), (c.IntTensor, engine.int32), (c.DoubleTensor, engine.float64)):
        made = kind([1, 0])
        assert made.dtype is dtype and made.device.type == "cuda" and isinstance(made, kind)


@pytest.mark.gpu
def test_device_extras(cuda_backend):
    c = engine.cuda
    major, minor = c.get_device_capability()
    assert c.get_arch_list() == [f"sm_{major}{minor}"]
    assert c.get_gencode_flags() == f"-gencode compute=compute_{major}{minor},code=sm_{major}{minor}"
    assert c.is_tf32_supported() == (major >= 8)
    assert c.can_device_access_peer(0, 0) is False
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        c.can_device_access_peer(0, c.device_count())
    assert c.cudart() is cuda_backend.cuda.runtime
    gens = c.default_generators
    assert len(gens) == c.device_count() and gens[0] is c.default_generators[0]
    c.manual_seed(5)
    assert gens[0].initial_seed() == 5 == c.random.initial_seed()
    assert c.nccl.is_available([engine.ones(2)]) is False  # a CPU tensor (or no NCCL)


@pytest.mark.gpu
def test_memory_extras(cuda_backend):
    c = engine.cuda
    c.reset_accumulated_memory_stats()
    assert c.memory_stats()["allocation.all.allocated"] == 0
    x = engine.empty(1 << 10, device="cuda")
    stats = c.memory_stats()
    assert stats["allocation.all.allocated"] >= 1 and stats["allocated_bytes.all.allocated"] >= 4 << 10
    nested = c.memory_stats_as_nested_dict()
    assert nested["allocated_bytes"]["all"]["current"] == stats["allocated_bytes.all.current"]
    assert nested["allocation"]["all"]["allocated"] == stats["allocation.all.allocated"]
    assert c.memory_cached() == c.memory_reserved() and c.max_memory_cached() == c.max_memory_reserved()
    c.reset_accumulated_memory_stats()
    assert c.memory_stats()["allocated_bytes.all.allocated"] == 0
    del x
    assert c.get_per_process_memory_fraction() == 1.0
    c.set_per_process_memory_fraction(0.5)
    try:
        assert c.get_per_process_memory_fraction() == pytest.approx(0.5)
    finally:
        cuda_backend.get_default_memory_pool().set_limit(size=0)
    assert c.get_per_process_memory_fraction() == 1.0


@pytest.mark.gpu
def test_nvml_processes_and_memory_used(cuda_backend, monkeypatch):
    import sys
    import types

    nvml = types.ModuleType("pynvml")
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=3 << 30, total=80 << 30)
    processes = [types.SimpleNamespace(pid=4242, usedGpuMemory=512 * 2**20)]
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda h: processes
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    c = engine.cuda
    assert c.device_memory_used() == 3 << 30
    assert c.list_gpu_processes() == "GPU:0\nprocess       4242 uses      512.000 MB GPU memory"
    processes.clear()
    assert c.list_gpu_processes(0) == "GPU:0\nno processes are running"


@pytest.mark.gpu
def test_sync_debug_mode_flags_device_to_host_copies(cuda_backend):
    c = engine.cuda
    x = engine.ones(3, device="cuda")
    assert c.get_sync_debug_mode() == 0
    try:
        c.set_sync_debug_mode("warn")
        assert c.get_sync_debug_mode() == 1
        with pytest.warns(UserWarning, match="synchronizing CUDA operation"):
            x.sum().item()
        c.set_sync_debug_mode(2)
        with pytest.raises(RuntimeError, match="synchronizing CUDA operation"):
            x.cpu()
        y = x * 2  # work that stays on the device is fine
        for bad in ("loud", 3):
            with pytest.raises(RuntimeError, match="invalid value of debug_mode"):
                c.set_sync_debug_mode(bad)
        assert c.get_sync_debug_mode() == 2
    finally:
        c.set_sync_debug_mode("default")
    assert float(y.sum().item()) == 6.0
