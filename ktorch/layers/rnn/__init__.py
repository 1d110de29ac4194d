from ktorch.layers.rnn.bidirectional import Bidirectional
from ktorch.layers.rnn.gru import GRU, GRUCell
from ktorch.layers.rnn.lstm import LSTM, LSTMCell
from ktorch.layers.rnn.rnn import RNN
from ktorch.layers.rnn.simple_rnn import SimpleRNN, SimpleRNNCell
from ktorch.layers.rnn.stacked_rnn_cells import StackedRNNCells
from ktorch.layers.rnn.time_distributed import TimeDistributed

__all__ = [
    "Bidirectional",
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "TimeDistributed",
]
