#nullable enable
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Equinas.MLNet;
using Equinas.MLNet.Input;
using System.Text.Json.Nodes;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;
using TorchSharp;
using static TorchSharp.torch;

[assembly: LoadableClass(typeof(EquinasModelParameters), null, typeof(SignatureLoadModel),
    "Equinas equivariant image classifier", EquinasModelParameters.LoaderSignature)]

namespace Equinas.MLNet;

/// <summary>
/// The model an <see cref="EquivariantImageClassificationTrainer"/> produces: a trained group-equivariant CNN (one
/// symmetry group per layer, or mixed layers with their learned weights z), the input preprocessing training used, the
/// class count and the record of the search. Saved into and loaded from ML.NET model files by
/// <c>mlContext.Model.Save</c> and <c>mlContext.Model.Load</c>.
/// </summary>
/// <remarks>
/// <para>
/// The model holds native (libtorch) memory. It is released when the model is disposed, which a
/// <see cref="PredictionEngine{TSrc, TDst}"/> does when it is disposed unless it was created with
/// <c>PredictionEngineOptions.OwnsTransformer = false</c>. Disposing twice is harmless; predicting after disposal
/// throws <see cref="ObjectDisposedException"/>.
/// </para>
/// <para>
/// A model is safe to use from several threads at once: one <see cref="PredictionEngine{TSrc, TDst}"/> per thread, or
/// <c>Transform</c> over a shared transformer.
/// </para>
/// <para>
/// The network runs on the device chosen from MLContext's <c>GpuDeviceId</c> and <c>FallbackToCpu</c> when the model
/// is trained or loaded; it is saved as CPU tensors, so a model saved on one device loads on any.
/// </para>
/// </remarks>
public sealed partial class EquinasModelParameters : ModelParametersBase<VBuffer<float>>, IValueMapper, IDisposable
{
    internal const string LoaderSignature = "EquinasImageClassifier";
    internal const string RegistrationName = "EquinasModelParameters";

    /// <summary>Entry names of the model's files inside the model zip (under the trainer's folder).</summary>
    internal const string MetadataEntry = "EquinasMetadata.json";
    internal const string ArchitectureEntry = "EquinasArchitecture.bin";
    internal const string WeightsEntry = "EquinasWeights.bin";

    private const int PayloadFormat = 1;

    private readonly StoredNetwork _network;

    // Predictions hold the read side while they use the network's native memory; Dispose takes the write side, so it
    // waits for predictions in flight and later ones see the flag and throw ObjectDisposedException.
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2213", Justification = "The lock outlives Dispose on purpose: calls after disposal must still enter it to see the flag and throw ObjectDisposedException.")]
    private readonly ReaderWriterLockSlim _lifetime = new(LockRecursionPolicy.SupportsRecursion);
    private readonly DataViewType _inputType;
    private readonly Device _device;
    private readonly VectorDataViewType _outputType;
    private bool _disposed;
    private long _forwards;

    private EquinasModelParameters(IHostEnvironment env, StoredNetwork network, InputSpec input, int classes, EquinasHistory history, Device device)
        : base(env, RegistrationName)
    {
        _device = device;
        _network = network;
        Input = input;
        ClassCount = classes;
        History = history;
        LayerGroups = network.Network.LayerGroups.Select(g => g.Name).ToArray();
        ParameterCount = network.Network.ParameterCount;
        _inputType = input.ColumnType();
        _outputType = new VectorDataViewType(NumberDataViewType.Single, classes);
        SeededInit.MoveTo(network.Network, device);
        Prepare();
    }

    // *** Binary format ***
    // (base) int: sizeof(float)
    // int: payload format (1)
    // entry EquinasMetadata.json: input spec, classes, layer groups, parameter count, search history, SHA-256 and
    //   length of the two binary entries
    // entry EquinasArchitecture.bin: the network description (TrainedNetwork format)
    // entry EquinasWeights.bin: the network's TorchSharp state
    private EquinasModelParameters(IHostEnvironment env, ModelLoadContext ctx)
        : base(env, RegistrationName, ctx)
    {
        int format = ctx.Reader.ReadInt32();
        if (format != PayloadFormat)
        {
            throw new InvalidDataException($"The Equinas model in this file has payload format {format}; this version of Equinas.MLNet reads format {PayloadFormat}.");
        }

        string? metadataText = null;
        byte[]? architecture = null, weights = null;
        ctx.TryLoadTextStream(MetadataEntry, r => metadataText = r.ReadToEnd());
        ctx.TryLoadBinaryStream(ArchitectureEntry, r => architecture = ReadAll(r));
        ctx.TryLoadBinaryStream(WeightsEntry, r => weights = ReadAll(r));
        var metadata = EquinasModelFile.ParseMetadata(metadataText);
        EquinasModelFile.CheckEntry(ArchitectureEntry, architecture, metadata.ArchitectureSha256, metadata.ArchitectureLength);
        EquinasModelFile.CheckEntry(WeightsEntry, weights, metadata.WeightsSha256, metadata.WeightsLength);

        using (var ch = Host.Start("Device"))
        {
            _device = DeviceSelection.Resolve(env, ch);
        }

        using (var a = new BinaryReader(new MemoryStream(architecture!)))
        using (var w = new BinaryReader(new MemoryStream(weights!)))
        {
            _network = StoredNetwork.Load(a, w, _device);
        }

        try
        {
            Input = metadata.Input ?? throw EquinasModelFile.Corrupt(MetadataEntry, "an input spec", "none");
            ClassCount = metadata.Classes;
            if (ClassCount != _network.Description.Classes || Input.Channels != _network.Description.InputChannels || Input.Mean.Length != Input.Channels || Input.Std.Length != Input.Channels)
            {
                throw EquinasModelFile.Corrupt(MetadataEntry, $"{_network.Description.Classes} classes and {_network.Description.InputChannels} input channels with one mean and std each", $"{ClassCount} classes, {Input.Channels} channels, {Input.Mean.Length} means, {Input.Std.Length} stds");
            }

            History = metadata.History ?? throw EquinasModelFile.Corrupt(MetadataEntry, "the search history", "none");
            LayerGroups = metadata.LayerGroups ?? throw EquinasModelFile.Corrupt(MetadataEntry, "the layer groups", "none");
            ParameterCount = _network.Network.ParameterCount;
            _inputType = Input.ColumnType();
            _outputType = new VectorDataViewType(NumberDataViewType.Single, ClassCount);
            Prepare();
        }
        catch
        {
            _network.Dispose();
            throw;
        }
    }

    /// <summary>Gets the final symmetry group of each conv layer, input side first (for mixed layers: the member with the largest z).</summary>
    public IReadOnlyList<string> LayerGroups { get; }

    /// <summary>Gets how the architecture was found: every candidate of the evolutionary search, or z per layer per epoch.</summary>
    public EquinasHistory History { get; }

    /// <summary>Gets the number of trainable weights (architecture logits excluded).</summary>
    public long ParameterCount { get; }

    /// <summary>Gets the number of classes (the training label's key count).</summary>
    public int ClassCount { get; }

    /// <summary>Gets the image shape the network takes: channels, height, width.</summary>
    public (int Channels, int Height, int Width) InputShape => (Input.Channels, Input.Height, Input.Width);

    /// <summary>Gets whether the network is made of [G]-mixed layers (differentiable search, mixture kept).</summary>
    public bool IsMixed => _network.Network.Kind == NetworkKind.Mixed;

    /// <summary>The stored network (for tests and the export).</summary>
    internal StoredNetwork Stored => _network;

    /// <summary>Gets the mixture weights z of every mixed layer (member group name to weight), or null for a network with one group per layer.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>>? Z => _network.Network is MixedGroupCnn mixed
        ? ZByName(mixed.Spec.Members.Select(m => m.Name).ToArray(), mixed.Z())
        : null;

    internal InputSpec Input { get; }

    /// <inheritdoc/>
    protected override PredictionKind PredictionKind => PredictionKind.MulticlassClassification;

    DataViewType IValueMapper.InputType => _inputType;

    DataViewType IValueMapper.OutputType => _outputType;

    /// <summary>
    /// Releases the network's native memory. Safe to call more than once, and from any thread: it waits for predictions
    /// in flight, and later predictions throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        _lifetime.EnterWriteLock();
        try
        {
            if (!_disposed)
            {
                _disposed = true;
                _network.Dispose();
            }
        }
        finally
        {
            _lifetime.ExitWriteLock();
        }
    }

    /// <summary>
    /// Finds the Equinas model in a fitted pipeline: the model of the first <see cref="EquinasPredictionTransformer"/> in
    /// the chain (or <paramref name="model"/> itself), or of a <see cref="MulticlassPredictionTransformer{TModel}"/> of
    /// <see cref="EquinasModelParameters"/> (models saved by earlier versions load as one), or null when there is none.
    /// </summary>
    /// <param name="model">A transformer: the trainer's own, or a chain (nested chains are searched).</param>
    /// <returns>The model, or null.</returns>
    public static EquinasModelParameters? FindIn(ITransformer? model) => model switch
    {
        IPredictionTransformer<EquinasModelParameters> p => p.Model,
        IEnumerable<ITransformer> chain => chain.Select(FindIn).FirstOrDefault(m => m is not null),
        _ => null,
    };

    /// <summary>
    /// Checks a saved model file before it is loaded: that it is a complete zip and that every Equinas model in it has
    /// its entries with the length and SHA-256 recorded when it was saved. <c>mlContext.Model.Load</c> makes the same
    /// checks, but ML.NET's loader reaches the model by reflection, so its exception arrives wrapped in
    /// <see cref="System.Reflection.TargetInvocationException"/>s (the message is in <c>GetBaseException()</c>); call
    /// this first where the first message a user sees should name what is wrong.
    /// </summary>
    /// <param name="path">The model zip written by <c>mlContext.Model.Save</c>.</param>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is not a complete zip, or an entry is missing, truncated or modified (the message names the file and the entry).</exception>
    public static void VerifyFile(string path) => EquinasModelFile.Verify(path);

    /// <summary>A model around a trained network, put on <paramref name="device"/> (the device it was trained on).</summary>
    internal static EquinasModelParameters Create(IHostEnvironment env, StoredNetwork network, InputSpec input, int classes, EquinasHistory history, Device device)
    {
        Contracts.CheckValue(env, nameof(env));
        return new EquinasModelParameters(env, network, input, classes, history, device);
    }

    internal static EquinasModelParameters Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        env.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel(GetVersionInfo());
        return new EquinasModelParameters(env, ctx);
    }

    private static VersionInfo GetVersionInfo() =>
        new(
            modelSignature: "EQNASCLS",
            verWrittenCur: 0x00010001,
            verReadableCur: 0x00010001,
            verWeCanReadBack: 0x00010001,
            loaderSignature: LoaderSignature,
            loaderAssemblyName: typeof(EquinasModelParameters).Assembly.FullName);

    /// <inheritdoc/>
    protected override void SaveCore(ModelSaveContext ctx)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Input.Kind == FeatureKind.Image)
        {
            throw new NotSupportedException(
                $"This model reads the image column '{Input.Column}' ({_inputType}). ML.NET leaves image columns out of the schema it saves, so the saved model could not be loaded again. Train on pixels (ExtractPixels after ResizeImages) or on encoded bytes (LoadRawImageBytes with ImageHeight and ImageWidth) to save the model.");
        }

        base.SaveCore(ctx);
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.Writer.Write(PayloadFormat);

        using var architecture = new MemoryStream();
        using var weights = new MemoryStream();
        using (var a = new BinaryWriter(architecture, System.Text.Encoding.UTF8, leaveOpen: true))
        using (var w = new BinaryWriter(weights, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            _network.Save(a, w);
        }

        byte[] architectureBytes = architecture.ToArray(), weightBytes = weights.ToArray();
        var metadata = new EquinasModelFile.StoredMetadata
        {
            Input = Input,
            Classes = ClassCount,
            LayerGroups = LayerGroups.ToArray(),
            History = History,
            ArchitectureSha256 = Convert.ToHexString(SHA256.HashData(architectureBytes)),
            ArchitectureLength = architectureBytes.Length,
            WeightsSha256 = Convert.ToHexString(SHA256.HashData(weightBytes)),
            WeightsLength = weightBytes.Length,
        };
        ctx.SaveTextStream(MetadataEntry, w => w.Write(JsonSerializer.Serialize(metadata, EquinasModelFile.Json)));
        ctx.SaveBinaryStream(ArchitectureEntry, w => w.Write(architectureBytes));
        ctx.SaveBinaryStream(WeightsEntry, w => w.Write(weightBytes));
    }

    ValueMapper<TSrc, TDst> IValueMapper.GetMapper<TSrc, TDst>()
    {
        if (typeof(TDst) != typeof(VBuffer<float>))
        {
            throw new InvalidOperationException($"The Equinas model produces VBuffer<Single> scores, not {typeof(TDst).Name}.");
        }

        var read = Input.ReaderFor<TSrc>();
        ValueMapper<TSrc, VBuffer<float>> map = (in TSrc source, ref VBuffer<float> destination) =>
        {
            var pixels = new float[Input.Size];
            read(source, pixels, -1);
            var scores = PredictBatch(pixels, 1);
            var editor = VBufferEditor.Create(ref destination, ClassCount);
            scores.AsSpan().CopyTo(editor.Values);
            destination = editor.Commit();
        };
        return (ValueMapper<TSrc, TDst>)(Delegate)map;
    }

    /// <summary>
    /// Class probabilities for a batch of feature values (one forward pass), in row order: <see cref="ClassCount"/>
    /// floats per row. <paramref name="firstRow"/> is the first value's row number, for messages about bad values.
    /// </summary>
    internal float[] ScoreRows<TSrc>(ReadOnlySpan<TSrc> values, long firstRow) =>
        ScoreRows(values, firstRow, ReadBack);

    /// <summary>
    /// <see cref="ScoreRows{TSrc}(ReadOnlySpan{TSrc}, long)"/> with the probabilities (<c>rows x classes</c>, on the
    /// model's device) handed to <paramref name="read"/> inside the call's dispose scope instead of being copied back:
    /// the meta-device tests run the batched scoring path this way (meta tensors hold no values to copy).
    /// </summary>
    internal TResult ScoreRows<TSrc, TResult>(ReadOnlySpan<TSrc> values, long firstRow, Func<Tensor, TResult> read)
    {
        var reader = Input.ReaderFor<TSrc>();
        int size = Input.Size;
        var pixels = new float[values.Length * size];
        for (int i = 0; i < values.Length; i++)
        {
            reader(values[i], pixels.AsSpan(i * size, size), firstRow + i);
        }

        return PredictBatch(pixels, values.Length, read);
    }

    /// <summary>How many forward passes this model has run (tests check that a Transform batches).</summary>
    internal long ForwardCount => Interlocked.Read(ref _forwards);

    /// <summary>
    /// Class probabilities for <paramref name="count"/> raw images (planar, C x H x W each, not yet normalised; the
    /// array is normalised in place). Thread-safe: gradients off and native memory released per call.
    /// </summary>
    internal float[] PredictBatch(float[] rawPixels, int count) => PredictBatch(rawPixels, count, ReadBack);

    /// <summary>
    /// <see cref="PredictBatch(float[], int)"/> with the probabilities on the model's device handed to
    /// <paramref name="read"/> inside the call's dispose scope.
    /// </summary>
    internal TResult PredictBatch<TResult>(float[] rawPixels, int count, Func<Tensor, TResult> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        _lifetime.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Interlocked.Increment(ref _forwards);
            Input.Normalize(rawPixels.AsSpan(0, count * Input.Size));
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            var images = torch.tensor(rawPixels, [count, Input.Channels, Input.Height, Input.Width]);
            return read(Probabilities(images));
        }
        finally
        {
            _lifetime.ExitReadLock();
        }
    }

    private static float[] ReadBack(Tensor probabilities) => probabilities.cpu().data<float>().ToArray();

    /// <summary>The device the network predicts on (chosen from MLContext's GpuDeviceId when the model was made or loaded).</summary>
    internal Device Device => _device;

    /// <summary>
    /// Softmax probabilities of normalised images (on any device; moved to the model's), left on the model's device in
    /// the caller's dispose scope. The caller holds the lifetime lock and turns gradients off.
    /// </summary>
    internal Tensor Probabilities(Tensor images) =>
        nn.functional.softmax(_network.Network.call(Search.Training.ImageDataset.To(images, _device)), 1);

    /// <summary>Builds the inference caches now, so that concurrent first calls do not race (one forward, nothing read back).</summary>
    private void Prepare()
    {
        _network.Network.PrepareForInference();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        Probabilities(torch.zeros(1, Input.Channels, Input.Height, Input.Width));
    }

    internal static IReadOnlyList<IReadOnlyDictionary<string, double>> ZByName(IReadOnlyList<string> members, IReadOnlyList<double[]> z) =>
        z.Select(layer => (IReadOnlyDictionary<string, double>)members.Select((m, i) => (m, layer[i])).ToDictionary(p => p.m, p => p.Item2)).ToArray();

    private static byte[] ReadAll(BinaryReader reader)
    {
        using var buffer = new MemoryStream();
        reader.BaseStream.CopyTo(buffer);
        return buffer.ToArray();
    }
}
